"""The station CA's second kind of certificate (issue 14): one for a station's log-signing
key, the Ed25519 checkpoint-note key in its token that also signs every append
(``tools.registry.log_signers``). With it, any station holding the station CA
certificate (outside the database) can check the entries another station appended to a
shared log; the TLS certificate alone could not say which Ed25519 key is the station's.

The certificate names the station as its TLS certificate does (CN its role, UID its
station id) and can do one thing: sign log appends (KeyUsage digitalSignature only, EKU
``LOG_SIGNING_EKU``, not a CA). The registry operator's own home signs too (its
`registry recipients` event): ``ensure_own_log_signer`` certifies its key once.
"""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from hsm import eddsa
from hsm.ca import role_certificates
from hsm.errors import KeyNotFoundError
from hsm.keys import latest_version
from hsm.roles import KeyRole
from hsm.token import Hsm

from ..registry import log_signers
from ..registry.records import RegistryError
from .station_ca import MAX_DAYS, StationRequest, issue_end_entity

OPERATOR_NAME = "juki registry operator"  # CN of the registry operator's own log signer


def station_ca_certificates(hsm: Hsm) -> list[x509.Certificate]:
    """Every station CA certificate in the token, oldest first ([] when none): what the
    registry operator's home trusts log signers by."""
    return role_certificates(hsm, KeyRole.STATION_CA)


def _certificate(hsm: Hsm, subject: x509.Name, raw: bytes, days: int) -> x509.Certificate:
    return issue_end_entity(hsm, subject, ed25519.Ed25519PublicKey.from_public_bytes(raw),
                            days, log_signers.LOG_SIGNING_EKU)


def issue_log_signer(hsm: Hsm, request: StationRequest, days: int) -> x509.Certificate:
    """The certificate for the log-signing key a checked request carries: CN the
    station's role, UID its station id (named even when the CSR left UID to the
    operator's ``--station-id``: a verifier takes the station from it), the Ed25519 key,
    log signing only."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, request.role),
                         x509.NameAttribute(NameOID.USER_ID, request.station_id)])
    return _certificate(hsm, subject, request.log_key, days)


def refuse_foreign_row(hsm: Hsm, db: Any, station_id: str, kid: str) -> None:
    """Refused if ``log_signers`` holds a row for ``station_id``'s key ``kid`` that this
    station CA does not vouch for: the table is append-only, so storing the right
    certificate would be a no-op, and the station's appends would be unprovable to every
    other station, silently."""
    if db.execute("SELECT 1 FROM log_signers WHERE station_id = ? AND key_id = ?",
                  (station_id, kid)).fetchone() is None:
        return
    if (station_id, kid) not in log_signers.trusted(db, station_ca_certificates(hsm)):
        raise RegistryError(f"log_signers holds a certificate for station {station_id!r}, "
                            f"key {kid} that this station CA did not issue (the table is "
                            "append-only: have the station make a new log key)")


def store_checked(hsm: Hsm, db: Any, station_id: str, cert: x509.Certificate) -> str:
    """Keep ``cert`` in ``log_signers`` (``refuse_foreign_row`` before and after: the row
    there for its key must be one this station CA vouches for); its key id."""
    kid = log_signers.key_id(cert.public_key().public_bytes_raw())
    refuse_foreign_row(hsm, db, station_id, kid)
    log_signers.store(db, station_id, cert)
    refuse_foreign_row(hsm, db, station_id, kid)
    return kid


def ensure_own_log_signer(hsm: Hsm, station_id: str, db: Any) -> log_signers.SignerKey:
    """The registry operator's home's current log-signing key certified in ``log_signers``
    (``db``: the administrative connection), by its own station CA: issued and stored
    only if no trusted row holds it yet. A row for the key that its CA does not vouch for
    cannot be replaced (the table is append-only): refused (``refuse_foreign_row``)."""
    version = latest_version(hsm, KeyRole.AUDIT_NOTE_SIGNER)
    if version is None:
        raise KeyNotFoundError(f"no {KeyRole.AUDIT_NOTE_SIGNER.value} key in the registry "
                               "operator's token (run `juki hsm init` on its home)")
    raw = eddsa.public_keys(hsm, KeyRole.AUDIT_NOTE_SIGNER)[version]
    kid = log_signers.key_id(raw)
    known = log_signers.trusted(db, station_ca_certificates(hsm)).get((station_id, kid))
    if known is not None:
        return known
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, OPERATOR_NAME),
                         x509.NameAttribute(NameOID.USER_ID, station_id)])
    store_checked(hsm, db, station_id, _certificate(hsm, subject, raw, MAX_DAYS))
    return log_signers.SignerKey(station_id, kid, raw)
