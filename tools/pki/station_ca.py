"""The station CA of a shared registry (issue 14): it certifies each station's TLS client
key, so PostgreSQL (``ssl_ca_file``, ``clientcert=verify-full``) admits a station as the
database role its certificate names, and refuses it once revoked (``ssl_crl_file``).

The CA key (EC P-256) and its self-signed certificate live in the registry operator's
token (a juki home of its own, ``--ca-home``); ``cryptography`` builds every structure and
the token signs (``hsm.tls_keys.TokenEcSigner``). What was issued is kept as one JSON file
per certificate under ``<ca home>/station-certs/``, with the CRL number beside them.

A request names the station twice: CN = its database role, UID = its station id (what
its provision-log entries say, bound to the role by ``pg_roles.add_station``); the two
must agree (``tools.registry.roles.station_role``), so no CSR can pair one station's id
with another's role.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cardlib.atomic_file import write_atomically
from hsm.ca import _store_certificate, load_certificate
from hsm.keys import latest_version
from hsm.roles import KeyRole, label_for
from hsm.tls_keys import TokenEcSigner, ensure_ec_key
from hsm.token import Hsm

from ..errors import RequestError, StationConfigError
from ..registry import log_signers
from ..registry.roles import STATION_ROLE_PATTERN, station_role

CA_SUBJECT = "Juki Registry Station CA"
ORGANISATION = "Juki Registry Network (test)"
CA_VALIDITY = dt.timedelta(days=10 * 366)
CERTS_DIR = "station-certs"
CRL_NUMBER_FILE = "crl-number"
MAX_DAYS = 825


@dataclass(frozen=True)
class StationRequest:
    """A verified CSR: who asks, and the key to certify."""

    station_id: str
    role: str
    public_key: ec.EllipticCurvePublicKey
    subject: x509.Name
    log_key: bytes  # raw Ed25519: the station's log-signing key (``log_signers``)


@dataclass(frozen=True)
class IssuedStation:
    station_id: str
    role: str
    serial: str  # hex
    not_after: str
    status: str  # "valid" | "revoked"
    revoked_at: str | None

    def as_json(self) -> dict[str, object]:
        return dict(vars(self))


def ensure_station_ca(hsm: Hsm) -> tuple[x509.Certificate, bool]:
    """The station CA's certificate, its key and certificate created unless present."""
    version, created = ensure_ec_key(hsm, KeyRole.STATION_CA)
    cert = load_certificate(hsm, KeyRole.STATION_CA, version)
    if cert is None:
        cert = _self_signed(TokenEcSigner(hsm, KeyRole.STATION_CA, version), version)
        _store_certificate(hsm, label_for(KeyRole.STATION_CA, version), cert)
        created = True
    return cert, created


def _ca(hsm: Hsm) -> tuple[TokenEcSigner, x509.Certificate]:
    version = latest_version(hsm, KeyRole.STATION_CA)
    cert = load_certificate(hsm, KeyRole.STATION_CA, version) if version else None
    if version is None or cert is None:
        raise StationConfigError("no station CA in this token: run `juki registry init-ca`")
    return TokenEcSigner(hsm, KeyRole.STATION_CA, version), cert


def ca_certificate(hsm: Hsm) -> x509.Certificate:
    """The station CA's current certificate (what issues now)."""
    return _ca(hsm)[1]


def _self_signed(signer: TokenEcSigner, version: int) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION),
                      x509.NameAttribute(NameOID.COMMON_NAME, f"{CA_SUBJECT} v{version}")])
    public = signer.public_key()
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                         False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(signer, hashes.SHA256()))


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier, what: str) -> str:
    values = name.get_attributes_for_oid(oid)
    if len(values) != 1 or not isinstance(values[0].value, str):
        raise RequestError("csr", f"the request must carry exactly one {what}")
    return values[0].value


def _log_key(csr: x509.CertificateSigningRequest) -> bytes:
    """The station's log-signing key the request carries (an extension request, since
    issue 14's attestations): required, an Ed25519 key."""
    try:
        value = csr.extensions.get_extension_for_oid(log_signers.LOG_KEY_EXTENSION).value
    except x509.ExtensionNotFound:
        raise RequestError("csr", "the request carries no log-signing key: make the CSR "
                                  "again with this version's `juki station enroll-registry`"
                           ) from None
    except ValueError as exc:  # duplicate or malformed extensions
        raise RequestError("csr", f"the request's extensions are malformed: {exc}") from None
    if not isinstance(value, x509.UnrecognizedExtension):
        raise RequestError("csr", "the request's log-signing key extension is malformed")
    try:
        return log_signers.key_from_extension(value.value)
    except ValueError as exc:
        raise RequestError("csr", str(exc)) from None


def check_request(pem: bytes, station_id: str | None = None) -> StationRequest:
    """A CSR from `juki station enroll-registry`, verified: its self-signature, an EC
    P-256 key, CN a station role and UID the station id that role belongs to (a CSR
    without UID: ``station_id`` as the operator gives it, which must give that CN), and
    the station's Ed25519 log-signing key (``log_signers.LOG_KEY_EXTENSION``)."""
    try:
        csr = x509.load_pem_x509_csr(pem)
    except ValueError as exc:
        raise RequestError("csr", f"not a PEM certificate request: {exc}") from None
    if not csr.is_signature_valid:
        raise RequestError("csr", "the request's signature does not verify")
    key = csr.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise RequestError("csr", "the station key must be EC P-256")
    role = _attribute(csr.subject, NameOID.COMMON_NAME, "common name")
    uids = csr.subject.get_attributes_for_oid(NameOID.USER_ID)
    if uids or station_id is None:
        named = _attribute(csr.subject, NameOID.USER_ID, "UID (the station id)")
        if station_id is not None and named != station_id:
            raise RequestError("csr", f"the request names station {named!r}, not {station_id!r}")
        station_id = named
    if not STATION_ROLE_PATTERN.match(role):
        raise RequestError("csr", f"CN {role!r} is not a station role (juki_station_...)")
    try:
        expected = station_role(station_id)
    except ValueError as exc:
        raise RequestError("csr", str(exc)) from None
    if expected != role:
        raise RequestError("csr", f"CN {role!r} is not the role of station {station_id!r} "
                                  f"({expected})")
    return StationRequest(station_id, role, key, csr.subject, _log_key(csr))


def issue_end_entity(hsm: Hsm, subject: x509.Name, public: CertificatePublicKeyTypes,
                     days: int, usage: x509.ObjectIdentifier) -> x509.Certificate:
    """A certificate of the station CA for ``public``: digitalSignature only, the one
    extended key usage ``usage``, ``days`` of validity (1 to ``MAX_DAYS``)."""
    if not 1 <= days <= MAX_DAYS:
        raise RequestError("days", f"validity must be 1 to {MAX_DAYS} days")
    signer, ca = _ca(hsm)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(ca.subject)
            .public_key(public)
            .serial_number(int.from_bytes(secrets.token_bytes(16), "big") >> 1)
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False,
                                         False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca.public_key()), critical=False)  # type: ignore[arg-type]
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(signer, hashes.SHA256()))


def issue(hsm: Hsm, request: StationRequest, days: int) -> x509.Certificate:
    """A TLS client certificate for the station (EKU clientAuth, digitalSignature)."""
    return issue_end_entity(hsm, request.subject, request.public_key, days,
                            ExtendedKeyUsageOID.CLIENT_AUTH)


class StationCertificates:
    """What the CA issued: ``<ca home>/station-certs/<serial>.json`` (0600), one each."""

    def __init__(self, ca_home: Path) -> None:
        self.root = ca_home / CERTS_DIR

    def record(self, station_id: str, cert: x509.Certificate) -> IssuedStation:
        role = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        entry = IssuedStation(station_id, str(role), f"{cert.serial_number:x}",
                              cert.not_valid_after_utc.isoformat(), "valid", None)
        self._write(entry, cert.public_bytes(serialization.Encoding.PEM).decode("ascii"))
        return entry

    def _write(self, entry: IssuedStation, pem: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomically(self.root / f"{entry.serial}.json",
                         json.dumps({**entry.as_json(), "pem": pem}, indent=2) + "\n")

    def entries(self) -> list[tuple[IssuedStation, str]]:
        found = []
        for path in sorted(self.root.glob("*.json")) if self.root.is_dir() else []:
            data = json.loads(path.read_text(encoding="utf-8"))
            pem = data.pop("pem")
            found.append((IssuedStation(**data), pem))
        return found

    def revoke(self, station_id: str) -> list[IssuedStation]:
        """Mark every valid certificate of ``station_id`` revoked; the ones it marked."""
        when = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
        marked = []
        for entry, pem in self.entries():
            if entry.station_id == station_id and entry.status == "valid":
                revoked = IssuedStation(entry.station_id, entry.role, entry.serial,
                                        entry.not_after, "revoked", when)
                self._write(revoked, pem)
                marked.append(revoked)
        return marked

    def next_crl_number(self) -> int:
        path = self.root / CRL_NUMBER_FILE
        number = int(path.read_text(encoding="ascii")) + 1 if path.exists() else 1
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomically(path, f"{number}\n")
        return number


def build_crl(hsm: Hsm, store: StationCertificates,
              next_update: dt.timedelta) -> x509.CertificateRevocationList:
    """The station CA's CRL: every revoked, unexpired station certificate, under a CRL
    number one above the last, signed in the token."""
    signer, ca = _ca(hsm)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    builder = (x509.CertificateRevocationListBuilder().issuer_name(ca.subject)
               .last_update(now).next_update(now + next_update)
               .add_extension(x509.CRLNumber(store.next_crl_number()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   ca.public_key()), critical=False))  # type: ignore[arg-type]
    for entry, _ in store.entries():
        if entry.status == "revoked" and dt.datetime.fromisoformat(entry.not_after) > now:
            assert entry.revoked_at is not None
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(int(entry.serial, 16))
                .revocation_date(dt.datetime.fromisoformat(entry.revoked_at))
                .add_extension(x509.CRLReason(x509.ReasonFlags.cessation_of_operation),
                               critical=False).build())
    return builder.sign(signer, hashes.SHA256())
