"""A station's enrolment with a shared registry (`juki station enroll-registry`): its TLS
client key generated in its own token, a CSR for the station CA, then the certificate
installed with what libpq needs (``tls``).

Files in ``<home>/registry-tls/``: ``station.csr``, ``station.pem`` (the installed
certificate), ``openssl.cnf`` (the engine), ``enrolment.json`` (role, station id, the
key version in use and one requested but not yet installed). The key itself is only in
the station's TLS token (``tls.tls_token_config``, made here on SoftHSM); asking again
reuses it, ``--new-key`` makes a next version, which is used only once its certificate
is installed (the old one keeps working until then).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cardlib.atomic_file import write_atomically
from hsm.keys import inventory
from hsm.roles import KeyRole, label_for
from hsm.tls_keys import TokenEcSigner, ec_public_key, ensure_ec_key
from hsm.token import Hsm, open_token

from ..errors import RequestError
from ..station.home import StationHome
from .roles import station_role
from .tls import (
    CERT_FILE,
    CSR_FILE,
    ENROLMENT_FILE,
    OPENSSL_CONF_FILE,
    engine_config,
    enrolment_dir,
    ensure_tls_token,
    read_enrolment,
)


@dataclass(frozen=True)
class Enrolled:
    role: str
    station_id: str
    path: Path  # the CSR written, or the certificate installed
    key_version: int
    token_label: str
    key: dict[str, object]  # the key's protection attributes as the token reports them

    def as_json(self, what: str) -> dict[str, object]:
        return {what: str(self.path), "role": self.role, "station_id": self.station_id,
                "token": self.token_label, "key_label": label_for(KeyRole.REGISTRY_TLS,
                                                                   self.key_version),
                "key": self.key}


def _tls_token(home: StationHome) -> Hsm:
    """The station's TLS token, made first if need be (before any PKCS#11 call here), and
    opened after the station's own (which repairs and backs up SoftHSM's files)."""
    config = ensure_tls_token(home)
    home.open_token()
    return open_token(config)


def _enrolled(hsm: Hsm, role: str, station_id: str, path: Path, version: int) -> Enrolled:
    label = label_for(KeyRole.REGISTRY_TLS, version)
    key = next(k.as_json() for k in inventory(hsm) if k.label == label)
    return Enrolled(role, station_id, path, version, hsm.config.token_label,
                    {name: key[name] for name in ("key_type", "bits", "sensitive", "extractable",
                                                  "always_sensitive", "never_extractable")})


def _save(home: StationHome, state: dict[str, object]) -> None:
    directory = enrolment_dir(home.root)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomically(directory / ENROLMENT_FILE, json.dumps(state, indent=2) + "\n")


def request(home: StationHome, *, new_key: bool = False) -> Enrolled:
    """The station's TLS key (made unless it has one) and a CSR for it: CN = the
    station's role, UID = its station id."""
    station_id = home.station_id()
    try:
        role = station_role(station_id)
    except ValueError as exc:
        raise RequestError("station id", f"{exc}; set [station] id in config.toml") from None
    state = read_enrolment(home.root)
    if state and state.get("station_id") != station_id:
        raise RequestError("station id", f"this home was enrolled as station "
                                         f"{state.get('station_id')!r}, not {station_id!r}")
    hsm = _tls_token(home)
    version = state.get("pending_version") or state.get("key_version")
    if new_key or not isinstance(version, int):
        version, _ = ensure_ec_key(hsm, KeyRole.REGISTRY_TLS, new=new_key)
    signer = TokenEcSigner(hsm, KeyRole.REGISTRY_TLS, version)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, role),
                         x509.NameAttribute(NameOID.USER_ID, station_id)])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(
        signer, hashes.SHA256())
    path = enrolment_dir(home.root) / CSR_FILE
    _save(home, {**state, "role": role, "station_id": station_id, "pending_version": version,
                 "token_label": hsm.config.token_label})  # the identity's token from now on
    write_atomically(path, csr.public_bytes(serialization.Encoding.PEM).decode("ascii"))
    return _enrolled(hsm, role, station_id, path, version)


def _matching_version(hsm: Hsm, state: dict[str, object], cert: x509.Certificate) -> int:
    for key in ("pending_version", "key_version"):
        version = state.get(key)
        if isinstance(version, int) and ec_public_key(
                hsm, KeyRole.REGISTRY_TLS, version) == cert.public_key():
            return version
    raise RequestError("certificate", "the certificate is not for this station's TLS key "
                                      "in its token")


def _names(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(a.value) for a in cert.subject.get_attributes_for_oid(oid)]


def install(home: StationHome, pem: bytes) -> Enrolled:
    """Check and install the station's certificate; from then on its registry
    connections present it (``tls.client_identity``)."""
    state = read_enrolment(home.root)
    if not state:
        raise RequestError("certificate", "no enrolment here: run `juki station "
                                          "enroll-registry` first")
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise RequestError("certificate", f"not a PEM certificate: {exc}") from None
    hsm = _tls_token(home)
    version = _matching_version(hsm, state, cert)
    if _names(cert, NameOID.COMMON_NAME) != [state["role"]]:
        raise RequestError("certificate", f"the certificate's CN is not {state['role']}")
    if _names(cert, NameOID.USER_ID) != [state["station_id"]]:
        raise RequestError("certificate", "the certificate names another station id")
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        usages = None
    if usages is None or ExtendedKeyUsageOID.CLIENT_AUTH not in usages:
        raise RequestError("certificate", "the certificate is not for TLS client auth")
    directory = enrolment_dir(home.root)
    write_atomically(directory / CERT_FILE, pem.decode("ascii"))
    write_atomically(directory / OPENSSL_CONF_FILE, engine_config(hsm.config.module))
    state = {k: v for k, v in state.items() if k != "pending_version"}
    _save(home, {**state, "key_version": version})
    return _enrolled(hsm, str(state["role"]), str(state["station_id"]), directory / CERT_FILE,
                     version)
