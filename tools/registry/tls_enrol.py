"""A station's enrolment with a shared registry (`juki station enroll-registry`): its TLS
client key generated in its own token, a CSR for the station CA (carrying the station's
log-signing key too, ``log_signers``), then the certificates installed with what libpq
needs (``tls``).

Files in ``<home>/registry-tls/``: ``station.csr``, ``station.pem`` (the installed TLS
certificate, alone: libpq sends the file), ``log-signer.pem`` (the station CA's
certificate for the station's log-signing key), ``station-ca.pem`` (the station CA: the
anchor other stations' log signers are checked by), ``openssl.cnf`` (the engine),
``enrolment.json`` (role, station id, the key version in use and one requested but not
yet installed, the log key installed / requested). The key itself is only in
the station's TLS token (``tls.tls_token_config``, made here on SoftHSM); asking again
reuses it, ``--new-key`` makes a next version, which is used only once its certificate
is installed (the old one keeps working until then).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cardlib.atomic_file import write_atomically
from hsm import eddsa
from hsm.keys import inventory
from hsm.roles import KeyRole, label_for
from hsm.tls_keys import TokenEcSigner, ec_public_key, ensure_ec_key
from hsm.token import Hsm, open_token

from ..errors import RequestError
from ..station.home import StationHome
from . import log_signers
from .roles import station_role
from .tls import (
    CERT_FILE,
    CSR_FILE,
    ENROLMENT_FILE,
    LOG_SIGNER_FILE,
    OPENSSL_CONF_FILE,
    STATION_CA_FILE,
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
    log_key_id: str = ""  # the log-signing key the CSR carries / the certificate holds
    log_key_made: bool = False  # made by this enrolment (the token had none)

    def as_json(self, what: str) -> dict[str, object]:
        return {what: str(self.path), "role": self.role, "station_id": self.station_id,
                "token": self.token_label, "key_label": label_for(KeyRole.REGISTRY_TLS,
                                                                   self.key_version),
                "key": self.key, "log_key_id": self.log_key_id,
                "log_key_created": self.log_key_made}


def _tokens(home: StationHome) -> tuple[Hsm, Hsm]:
    """The station's TLS token, made first if need be (before any PKCS#11 call here), and
    opened after the station's own (which repairs and backs up SoftHSM's files); (TLS
    token, station token)."""
    config = ensure_tls_token(home)
    station_hsm = home.open_token()
    return open_token(config), station_hsm


def _log_key(station_hsm: Hsm) -> tuple[int, bytes, bool]:
    """The station's log-signing key, the newest version of its checkpoint-note key
    (``KeyRole.AUDIT_NOTE_SIGNER``, Ed25519, in the station token); (version, raw key,
    made now). A token without one gets it here, as `juki hsm init` would make it: a
    station enrols before `hsm init` (which writes to the registry), and the CSR must
    carry this key for the station CA to certify it."""
    made = False
    keys = eddsa.public_keys(station_hsm, KeyRole.AUDIT_NOTE_SIGNER)
    if not keys:
        _, made = eddsa.ensure_ed25519_key(station_hsm, KeyRole.AUDIT_NOTE_SIGNER)
        keys = eddsa.public_keys(station_hsm, KeyRole.AUDIT_NOTE_SIGNER)
    if not keys:
        raise RequestError("log key", "the station token holds no checkpoint-note key: run "
                                      "`juki hsm init`")
    version = max(keys)
    return version, keys[version], made


# A log key this enrolment made (before the station could reach its registry): its
# key-created event is still to be recorded, by the `hsm init` that follows.
UNRECORDED_KEY = "log_key_created_unrecorded"


def unrecorded_key(home: StationHome) -> str | None:
    """The label of a key the enrolment made whose key-created event is not recorded yet."""
    label = read_enrolment(home.root).get(UNRECORDED_KEY)
    return str(label) if label else None


def key_recorded(home: StationHome) -> None:
    state = read_enrolment(home.root)
    if UNRECORDED_KEY in state:
        _save(home, {k: v for k, v in state.items() if k != UNRECORDED_KEY})


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
    station's role, UID = its station id, and the station's log-signing key (its newest
    checkpoint-note key) as an extension request for the station CA to certify."""
    station_id = home.station_id()
    try:
        role = station_role(station_id)
    except ValueError as exc:
        raise RequestError("station id", f"{exc}; set [station] id in config.toml") from None
    state = read_enrolment(home.root)
    if state and state.get("station_id") != station_id:
        raise RequestError("station id", f"this home was enrolled as station "
                                         f"{state.get('station_id')!r}, not {station_id!r}")
    hsm, station_hsm = _tokens(home)
    log_version, log_key, log_made = _log_key(station_hsm)
    version = state.get("pending_version") or state.get("key_version")
    if new_key or not isinstance(version, int):
        version, _ = ensure_ec_key(hsm, KeyRole.REGISTRY_TLS, new=new_key)
    signer = TokenEcSigner(hsm, KeyRole.REGISTRY_TLS, version)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, role),
                         x509.NameAttribute(NameOID.USER_ID, station_id)])
    csr = (x509.CertificateSigningRequestBuilder().subject_name(subject)
           .add_extension(log_signers.request_extension(log_key), critical=False)
           .sign(signer, hashes.SHA256()))
    path = enrolment_dir(home.root) / CSR_FILE
    _save(home, {**state, "role": role, "station_id": station_id, "pending_version": version,
                 "token_label": hsm.config.token_label,  # the identity's token from now on
                 "requested_log_key": {"id": log_signers.key_id(log_key),
                                       "label": label_for(KeyRole.AUDIT_NOTE_SIGNER,
                                                          log_version)},
                 **({UNRECORDED_KEY: label_for(KeyRole.AUDIT_NOTE_SIGNER, log_version)}
                    if log_made else {})})
    write_atomically(path, csr.public_bytes(serialization.Encoding.PEM).decode("ascii"))
    return replace(_enrolled(hsm, role, station_id, path, version),
                   log_key_id=log_signers.key_id(log_key), log_key_made=log_made)


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


@dataclass(frozen=True)
class Bundle:
    """What the registry operator hands back (`registry issue-station --out`): the TLS
    client certificate, the log-signer certificate and the station CA that issued both."""

    tls: x509.Certificate
    log_signer: x509.Certificate
    ca: x509.Certificate


def _usages(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    try:
        return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return []


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def read_bundle(pem: bytes) -> Bundle:
    """The three certificates of ``pem``, each exactly once and nothing else, told apart
    by what they are for (CA; EKU log signing; EKU TLS client auth)."""
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise RequestError("certificate", f"not PEM certificates: {exc}") from None
    kinds: dict[str, list[x509.Certificate]] = {"tls": [], "log": [], "ca": []}
    for number, cert in enumerate(certs, 1):
        kind = ("ca" if _is_ca(cert) else "log" if log_signers.LOG_SIGNING_EKU in _usages(cert)
                else "tls" if ExtendedKeyUsageOID.CLIENT_AUTH in _usages(cert) else None)
        if kind is None:
            raise RequestError("certificate", f"certificate {number} of the bundle "
                               f"({cert.subject.rfc4514_string()}) is neither for TLS client "
                               "auth, for log signing nor a CA")
        kinds[kind].append(cert)
    names = {"tls": "the TLS client certificate (EKU clientAuth)",
             "log": "the log-signer certificate (EKU log signing)",
             "ca": "the station CA certificate"}
    for kind, found in kinds.items():
        if len(found) != 1:
            raise RequestError("certificate", f"the bundle must hold {names[kind]} exactly "
                               f"once, it holds {len(found)}: install the whole PEM "
                               "`juki registry issue-station --out` wrote")
    return Bundle(kinds["tls"][0], kinds["log"][0], kinds["ca"][0])


def _check_issuer(cert: x509.Certificate, ca: x509.Certificate, what: str) -> None:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise RequestError("certificate", f"the bundle's CA certificate did not issue {what}"
                           ) from None


def _check_tls(hsm: Hsm, state: dict[str, object], bundle: Bundle) -> int:
    """The TLS certificate is for this station's TLS key (its version), role and id."""
    cert = bundle.tls
    version = _matching_version(hsm, state, cert)
    if _names(cert, NameOID.COMMON_NAME) != [state["role"]]:
        raise RequestError("certificate", f"the certificate's CN is not {state['role']}")
    if _names(cert, NameOID.USER_ID) != [state["station_id"]]:
        raise RequestError("certificate", "the certificate names another station id")
    _check_issuer(cert, bundle.ca, "the TLS certificate")
    return version


def _check_log_signer(station_hsm: Hsm, station_id: str, bundle: Bundle) -> str:
    """The log-signer certificate is the CA's, for log signing, names this station and
    holds one of its token's checkpoint-note keys; its key id."""
    _check_issuer(bundle.log_signer, bundle.ca, "the log-signer certificate")
    try:
        key = log_signers.check_certificate(
            bundle.log_signer.public_bytes(serialization.Encoding.DER), [bundle.ca], station_id)
    except ValueError as exc:
        raise RequestError("certificate", f"the log-signer certificate: {exc}") from None
    if key.public not in eddsa.public_keys(station_hsm, KeyRole.AUDIT_NOTE_SIGNER).values():
        raise RequestError("certificate", "the log-signer certificate is not for this "
                                          "station's checkpoint-note key in its token")
    return key.key_id


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def install(home: StationHome, pem: bytes) -> Enrolled:
    """Check and install the station's certificates (all three, or nothing is written);
    from then on its registry connections present the TLS one (``tls.client_identity``)
    and it trusts log signers by the station CA certificate (``tls.station_ca_anchors``)."""
    state = read_enrolment(home.root)
    if not state:
        raise RequestError("certificate", "no enrolment here: run `juki station "
                                          "enroll-registry` first")
    bundle = read_bundle(pem)
    hsm, station_hsm = _tokens(home)
    version = _check_tls(hsm, state, bundle)
    log_key_id = _check_log_signer(station_hsm, str(state["station_id"]), bundle)
    directory = enrolment_dir(home.root)
    write_atomically(directory / STATION_CA_FILE, _pem(bundle.ca))
    write_atomically(directory / LOG_SIGNER_FILE, _pem(bundle.log_signer))
    write_atomically(directory / CERT_FILE, _pem(bundle.tls))  # libpq sends this file
    write_atomically(directory / OPENSSL_CONF_FILE, engine_config(hsm.config.module))
    state = {k: v for k, v in state.items() if k not in ("pending_version", "requested_log_key")}
    _save(home, {**state, "key_version": version, "log_key_id": log_key_id})
    return replace(_enrolled(hsm, str(state["role"]), str(state["station_id"]),
                             directory / CERT_FILE, version), log_key_id=log_key_id)
