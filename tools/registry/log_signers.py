"""Stations' log-signing keys, certified by the station CA: how one station checks the
entries another station appended to a shared provision log.

Each station's token holds its Ed25519 checkpoint-note key (``KeyRole.AUDIT_NOTE_SIGNER``).
Since migration 10 it also signs every append (``tools.audit.attestations``). A token's
own MAC keys authenticate only its own entries; a signature can be checked by everyone
who trusts the public key. The station CA certifies that key: the station's CSR carries
it in a private extension request (``LOG_KEY_EXTENSION``, the key's SubjectPublicKeyInfo),
`juki registry issue-station` issues a second certificate for it (EKU
``LOG_SIGNING_EKU``, digitalSignature only) and stores it in ``log_signers``.

A verifier trusts a ``log_signers`` row only if its certificate is issued by a station CA
certificate the verifier holds outside the database, is for log signing, names the
station the row names and holds the key the row's key id says: whoever can write the
database (its owner included) cannot add a key. Expiry and revocation do not undo what
a key signed while it was good: a revoked station is shut out of the registry (TLS), its
earlier entries stay attributable to it.

The OIDs are under ``2.25`` (ITU-T X.667: an OID from a UUID, no registration needed).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

_ARC = "2.25.245957478815292897596752561396229695941"
LOG_KEY_EXTENSION = x509.ObjectIdentifier(_ARC + ".1")  # in a station CSR: the log key
LOG_SIGNING_EKU = x509.ObjectIdentifier(_ARC + ".2")  # a certificate for log signing
ED25519_RAW = 32


def key_id(raw: bytes) -> str:
    """How an attestation names its key: the first 8 bytes of SHA-256 of the raw 32-byte
    Ed25519 key, hex."""
    return hashlib.sha256(raw).digest()[:8].hex()


def request_extension(raw: bytes) -> x509.UnrecognizedExtension:
    """The CSR's extension request carrying the station's log key (its SPKI, DER)."""
    spki = ed25519.Ed25519PublicKey.from_public_bytes(raw).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return x509.UnrecognizedExtension(LOG_KEY_EXTENSION, spki)


def key_from_extension(value: bytes) -> bytes:
    """The raw 32-byte Ed25519 key of a ``LOG_KEY_EXTENSION`` value; ``ValueError`` naming
    what is wrong otherwise."""
    try:
        key = serialization.load_der_public_key(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"the log-key extension is not a public key: {exc}") from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise ValueError("the log-key extension must hold an Ed25519 key")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class SignerKey:
    """A log-signing key a verifier trusts: whose it is, and the key."""

    station_id: str
    key_id: str
    public: bytes  # raw Ed25519

    def verifies(self, signature: bytes, message: bytes) -> bool:
        try:
            ed25519.Ed25519PublicKey.from_public_bytes(self.public).verify(signature, message)
        except InvalidSignature:
            return False
        return True


def _issued_by(cert: x509.Certificate, anchors: list[x509.Certificate]) -> bool:
    for anchor in anchors:
        if anchor.subject != cert.issuer:
            continue
        try:
            cert.verify_directly_issued_by(anchor)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return True
    return False


def check_certificate(der: bytes, anchors: list[x509.Certificate],
                      station_id: str) -> SignerKey:
    """The key of a log-signer certificate, checked: issued by one of ``anchors``, EKU log
    signing, UID ``station_id``, an Ed25519 key. ``ValueError`` naming what is wrong."""
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise ValueError(f"not a DER certificate: {exc}") from None
    if not _issued_by(cert, anchors):
        raise ValueError("not issued by a station CA this station trusts")
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        usages = None
    if usages is None or LOG_SIGNING_EKU not in usages:
        raise ValueError("not a certificate for log signing")
    uids = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.USER_ID)]
    if uids != [station_id]:
        raise ValueError(f"it names station {uids[0] if uids else '(none)'!r}, not "
                         f"{station_id!r}")
    key = cert.public_key()
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise ValueError("its key is not Ed25519")
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return SignerKey(station_id, key_id(raw), raw)


def store(db: Any, station_id: str, cert: x509.Certificate) -> None:
    """Keep a log-signer certificate in ``log_signers`` (administrative connection); the
    same key again is a no-op."""
    key = cert.public_key()
    assert isinstance(key, ed25519.Ed25519PublicKey)
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    db.execute("INSERT INTO log_signers (station_id, key_id, certificate) VALUES (?, ?, ?) "
               "ON CONFLICT DO NOTHING",
               (station_id, key_id(raw), cert.public_bytes(serialization.Encoding.DER)))


def trusted(db: Any, anchors: list[x509.Certificate]) -> dict[tuple[str, str], SignerKey]:
    """(station id, key id) -> key, for every ``log_signers`` row whose certificate checks
    against ``anchors`` and whose key id is its key's; other rows are not trusted."""
    found = {}
    for station_id, row_key_id, der in db.execute(
            "SELECT station_id, key_id, certificate FROM log_signers"):
        try:
            key = check_certificate(bytes(der), anchors, str(station_id))
        except ValueError:
            continue
        if key.key_id == row_key_id:
            found[(key.station_id, key.key_id)] = key
    return found
