"""How a station connects to a shared PostgreSQL registry as itself: mutual TLS, the
client key in the station's token (issue 14).

libpq (the system's, through pure-python psycopg) loads the key through the OpenSSL
engine ``pkcs11`` (libengine-pkcs11-openssl): ``sslkey=pkcs11:<RFC 7512 URI>`` (libpq
splits engine and key id at the first colon). The key lives in a token of the station's
own beside its main one (``<label>-tls``): libp11 0.4.12 cannot enumerate the private keys
of a token holding an Ed25519 key, as the main token does (``hsm.softhsm_slot``). The
engine reads that token's PIN from a file (``pin-source=file:``), never from argv or the
environment: ``<home>/secrets/registry-tls.pin``, 0600, random, without newline (libp11
takes the whole file as the PIN).

Two things this process must get right (docs/deployment.md, design notes):
- OpenSSL reads ``OPENSSL_CONF`` once, at its first initialisation, which Python's own
  ``hashlib``/``ssl`` may already have done. So the engine's configuration (module path,
  ``init = 1``) is loaded explicitly with ``CONF_modules_load_file`` from the system
  libcrypto (the one libpq uses), once per process, whatever OPENSSL_CONF said.
- python-pkcs11 and libp11 share the one SoftHSM library in the process. Whoever calls
  C_Initialize second gets CKR_CRYPTOKI_ALREADY_INITIALIZED: libp11 accepts it,
  python-pkcs11 does not, so the station's token is opened (python-pkcs11) before the
  first TLS connection. ``init = 1`` keeps the engine's functional reference for the
  process's life, so closing a connection never makes libp11 call C_Finalize under the
  station's own sessions (tests/integration/test_registry_tls_pg.py proves both).
"""

from __future__ import annotations

import ctypes
import glob
import json
import os
import secrets
import sys
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from cardlib.atomic_file import sync_directory
from hsm.config import TokenConfig
from hsm.roles import KeyRole
from hsm.tls_keys import pkcs11_uri

from ..station.home import StationHome
from .records import RegistryError

if TYPE_CHECKING:
    from cryptography import x509

ENROLMENT_DIR = "registry-tls"
CSR_FILE = "station.csr"
CERT_FILE = "station.pem"  # the TLS client certificate only: libpq sends this file
LOG_SIGNER_FILE = "log-signer.pem"  # the station CA's certificate for the log-signing key
STATION_CA_FILE = "station-ca.pem"  # the station CA: the anchor for others' log signers
OPENSSL_CONF_FILE = "openssl.cnf"
ENROLMENT_FILE = "enrolment.json"
ENGINE_PIN_FILE = "registry-tls.pin"  # the TLS token's PIN, in the home's secrets directory
TLS_SO_PIN_FILE = "registry-tls.so-pin"
TLS_TOKEN_SUFFIX = "-tls"
ENGINE_GLOBS = ("/usr/lib/*/engines-3/pkcs11.so", "/usr/lib/engines-3/pkcs11.so")
REQUIRED_URL_PARAMETERS = {"sslmode": "verify-full", "sslrootcert": None}

_LOADED_CONFIGS: set[str] = set()
_LOAD_LOCK = threading.Lock()
# The identity this process's station connects with, by registry URL: other connections
# of the same process to the same registry (`issue batch`'s per-reader threads) use it too.
_IDENTITIES: dict[str, ClientIdentity] = {}


def engine_path() -> str:
    found = sorted(p for pattern in ENGINE_GLOBS for p in glob.glob(pattern))
    if not found:
        raise RegistryError("the OpenSSL pkcs11 engine is not installed "
                            "(Debian: libengine-pkcs11-openssl)")
    return found[0]


def engine_config(module: str) -> str:
    """The OpenSSL configuration that defines the engine ``pkcs11`` for ``module``."""
    return (f"openssl_conf = juki_openssl_init\n\n[juki_openssl_init]\n"
            f"engines = juki_engines\n\n[juki_engines]\npkcs11 = juki_pkcs11\n\n"
            f"[juki_pkcs11]\nengine_id = pkcs11\ndynamic_path = {engine_path()}\n"
            f"MODULE_PATH = {module}\ninit = 1\n")


def load_engine_config(path: Path) -> None:
    """Load ``path`` into this process's system libcrypto (once per path)."""
    with _LOAD_LOCK:
        if str(path) in _LOADED_CONFIGS:
            return
        crypto = ctypes.CDLL("libcrypto.so.3")
        crypto.CONF_modules_load_file.argtypes = [ctypes.c_char_p, ctypes.c_char_p,
                                                  ctypes.c_ulong]
        crypto.CONF_modules_load_file.restype = ctypes.c_int
        if crypto.CONF_modules_load_file(str(path).encode(), None, 0) <= 0:
            raise RegistryError(f"OpenSSL could not load the engine configuration {path}")
        _LOADED_CONFIGS.add(str(path))


def system_psycopg() -> object:
    """psycopg on the system libpq (its ``python`` implementation): the binary wheel's
    bundled libpq and OpenSSL cannot load the engine."""
    if "psycopg" not in sys.modules:
        os.environ.setdefault("PSYCOPG_IMPL", "python")
    import psycopg

    if psycopg.pq.__impl__ != "python":
        raise RegistryError("a station's TLS key in the token needs psycopg on the system "
                            f"libpq, not its {psycopg.pq.__impl__} implementation "
                            "(install `psycopg`, not `psycopg[binary]`)")
    return psycopg


@dataclass(frozen=True)
class ClientIdentity:
    """A station's enrolment: its role, certificate and token key, as libpq takes them."""

    role: str
    cert_file: Path
    openssl_conf: Path
    token: TokenConfig  # the station's TLS token (``tls_token_config``)
    key_version: int

    def __repr__(self) -> str:
        return f"ClientIdentity(role={self.role!r}, cert_file={str(self.cert_file)!r})"

    def key_uri(self) -> str:
        return pkcs11_uri(self.token.token_label, KeyRole.REGISTRY_TLS, self.key_version,
                          str(self.token.pin_file))

    def parameters(self) -> dict[str, str]:
        return {"user": self.role, "sslcert": str(self.cert_file),
                "sslkey": "pkcs11:" + self.key_uri()}

    def prepare(self) -> None:
        """Before a connection: the TLS token opened by python-pkcs11 first (its PIN file
        checked private), then the engine configured."""
        from hsm.token import open_token

        self.token.read_pin()  # private, every connection: libp11 reads the file at each
        # handshake, python-pkcs11 checked it only when this process first opened the token
        raw = self.token.pin_file.read_bytes()
        if raw != raw.strip():  # python-pkcs11 strips it, libp11 takes the file whole
            raise RegistryError(f"the TLS token's PIN file {self.token.pin_file} has white "
                                "space around the PIN (a trailing newline?): the engine takes "
                                "the whole file as the PIN; write it without (printf '%s')")
        open_token(self.token).call(lambda session: None)
        load_engine_config(self.openssl_conf)

    def conninfo(self, url: str) -> str:
        """``url`` (which must ask for verify-full against a root CA file) with this
        station's user, certificate and engine key added."""
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        given = conninfo_to_dict(url)
        for name, value in REQUIRED_URL_PARAMETERS.items():
            if not given.get(name) or (value and given[name] != value):
                raise RegistryError(f"the registry URL must carry {name}="
                                    f"{value or '<the server CA file>'} for a TLS station")
        return make_conninfo(url, **self.parameters())


def write_private(path: Path, text: str) -> None:
    """``text`` into ``path``, created 0600 (never readable by others, even briefly),
    durably (a PIN lost in a crash would lock the station out of its own TLS token)."""
    tmp = path.with_name(f".{path.name}.new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    sync_directory(path.parent)


def enrolment_dir(home_root: Path) -> Path:
    return home_root / ENROLMENT_DIR


def read_enrolment(home_root: Path) -> dict[str, object]:
    path = enrolment_dir(home_root) / ENROLMENT_FILE
    if not path.exists():
        return {}
    return dict(json.loads(path.read_text(encoding="utf-8")))


def station_ca_anchors(home_root: Path) -> list[x509.Certificate]:
    """The station CA certificate(s) this station installed with its certificates
    (``enroll-registry --install``): what it trusts other stations' log-signing keys by,
    held outside the database. [] when none is installed."""
    from cryptography import x509

    path = enrolment_dir(home_root) / STATION_CA_FILE
    if not path.exists():
        return []
    return x509.load_pem_x509_certificates(path.read_bytes())


def remember(url: str, identity: ClientIdentity) -> None:
    _IDENTITIES[url] = identity


def known_identity(url: str) -> ClientIdentity | None:
    return _IDENTITIES.get(url)


def tls_token_config(home: StationHome) -> TokenConfig:
    """The token holding the station's TLS key: ``[registry_tls] token_label`` and
    ``pin_file``, else the label its enrolment recorded (``station enroll-registry``),
    else ``<the home's [hsm] token_label>-tls``, with ``secrets/registry-tls.pin`` (no
    newline: libp11 takes the whole file as the PIN), on the station's module. Never
    derived from ``PKCS11_TOKEN_LABEL``: pointing one command at another station token
    does not move the station's registry identity."""
    config = home.token_config()
    settings = home.settings().get("registry_tls", {})
    enrolled = read_enrolment(home.root).get("token_label")
    station_label = home.settings().get("hsm", {}).get("token_label") or config.token_label
    label = (settings.get("token_label") or (enrolled if isinstance(enrolled, str) else "")
             or station_label + TLS_TOKEN_SUFFIX)
    pin_file = Path(settings.get("pin_file") or home.secrets_dir / ENGINE_PIN_FILE)
    return replace(config, token_label=label,
                   pin_file=pin_file if pin_file.is_absolute() else home.root / pin_file)


def ensure_tls_token(home: StationHome) -> TokenConfig:
    """The TLS token's configuration; on SoftHSM the token (and its random PINs, 0600 in
    the secrets directory) made if absent. Call before this process's first PKCS#11 call:
    SoftHSM would not see a token made later."""
    from hsm.softhsm_slot import init_token, token_labels
    from hsm.token import library_loaded

    config = tls_token_config(home)
    conf = config.softhsm2_conf
    if conf is None or config.token_label in token_labels(conf):
        return config
    if library_loaded(config.module):
        raise RegistryError("the station's TLS token must be made before the token library "
                            "is loaded: run `juki station enroll-registry` on its own")
    home.ensure()
    if not config.pin_file.exists():
        write_private(config.pin_file, secrets.token_hex(12))
    so_pin_file = home.secrets_dir / TLS_SO_PIN_FILE
    if not so_pin_file.exists():
        write_private(so_pin_file, secrets.token_hex(12))
    init_token(conf, config.token_label, so_pin_file.read_text(encoding="utf-8").strip(),
               config.read_pin())
    return config


def station_identity(home: StationHome) -> ClientIdentity | None:
    """The station home's registry identity, or None if it has no certificate installed
    (a station without one connects as the URL says: a TLS-only registry refuses it)."""
    enrolment = read_enrolment(home.root)
    version = enrolment.get("key_version")
    if not isinstance(version, int):
        return None
    directory = enrolment_dir(home.root)
    return ClientIdentity(str(enrolment["role"]), directory / CERT_FILE,
                          directory / OPENSSL_CONF_FILE, tls_token_config(home), version)
