"""Certificate revocation lists, one per issuing CA version, signed in the token.

Issuers: ``resident-issuing-ca`` (JPKI auth and the card certificates),
``resident-sign-ca`` (JPKI signature), ``operator-ca``; every version of each that the
token holds. A CRL lists that CA version's certificates that are revoked or on hold and
not yet expired, each with its reason code (``CRL_REASONS``), under a CRL number from
the registry (strictly increasing per CA version), with an AuthorityKeyIdentifier and a
next update ``next_update`` after this one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from hsm.ca import certificates_by_version
from hsm.roles import KeyRole
from hsm.signer import TokenRsaSigner
from hsm.token import Hsm

from ..registry import Registry
from ..registry.certificates import CertificateRecord
from ..registry.events import Event
from .issued import crl_file_name

CRL_ISSUERS = (KeyRole.RESIDENT_ISSUING_CA, KeyRole.RESIDENT_SIGN_CA, KeyRole.OPERATOR_CA)
DEFAULT_NEXT_UPDATE = dt.timedelta(hours=24)
MAX_NEXT_UPDATE = dt.timedelta(days=31)

# The registry's revocation reasons as RFC 5280 CRL reason codes; status "hold" is
# certificateHold whatever reason the card's suspension gave.
CRL_REASONS: dict[str, x509.ReasonFlags] = {
    "lost": x509.ReasonFlags.key_compromise,
    "stolen": x509.ReasonFlags.key_compromise,
    "key-lost": x509.ReasonFlags.key_compromise,
    "superseded": x509.ReasonFlags.superseded,
    "renewed": x509.ReasonFlags.superseded,
    "four-info-changed": x509.ReasonFlags.affiliation_changed,
    "moved-out": x509.ReasonFlags.affiliation_changed,
    "returned": x509.ReasonFlags.cessation_of_operation,
    "damaged": x509.ReasonFlags.cessation_of_operation,
    "deceased": x509.ReasonFlags.cessation_of_operation,
    "lapsed": x509.ReasonFlags.cessation_of_operation,  # the card lapsed after a move
    "hold": x509.ReasonFlags.certificate_hold,
}


def crl_reason(status: str, reason: str | None) -> x509.ReasonFlags:
    """The CRL reason code of a listed certificate (``status`` revoked or hold)."""
    if status == "hold":
        return x509.ReasonFlags.certificate_hold
    if reason not in CRL_REASONS:
        raise ValueError(f"no CRL reason code for registry reason {reason!r}")
    return CRL_REASONS[reason]


def _entry(record: CertificateRecord) -> x509.RevokedCertificate:
    assert record.revoked_at is not None
    return (x509.RevokedCertificateBuilder()
            .serial_number(int(record.serial_number, 16))
            .revocation_date(dt.datetime.fromisoformat(record.revoked_at))
            .add_extension(x509.CRLReason(crl_reason(record.status, record.reason)),
                           critical=False)
            .build())


def build_crl(hsm: Hsm, registry: Registry, role: KeyRole, version: int,
              next_update: dt.timedelta) -> x509.CertificateRevocationList:
    """The CRL of ``role`` version ``version``, signed in the token by that CA key."""
    if not dt.timedelta(0) < next_update <= MAX_NEXT_UPDATE:
        raise ValueError(f"next update must be within {MAX_NEXT_UPDATE.days} days")
    ca = certificates_by_version(hsm, role).get(version)
    if ca is None:
        raise ValueError(f"no {role.value} v{version} certificate in the token")
    number, entries = registry.crl_snapshot(role.value, version)  # one snapshot: see there
    this_update = dt.datetime.now(dt.UTC).replace(microsecond=0)
    builder = (x509.CertificateRevocationListBuilder()
               .issuer_name(ca.subject)
               .last_update(this_update)
               .next_update(this_update + next_update)
               .add_extension(x509.CRLNumber(number), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   ca.public_key()), critical=False))  # type: ignore[arg-type]
    for record in entries:
        builder = builder.add_revoked_certificate(_entry(record))
    return builder.sign(TokenRsaSigner(hsm, role, version), hashes.SHA256())


@dataclass(frozen=True)
class PublishedCrl:
    role: str
    version: int
    number: int
    entries: int
    this_update: str
    next_update: str
    files: tuple[str, ...]  # <role>-v<version>.crl (DER) and .crl.pem

    def as_json(self) -> dict[str, object]:
        return {**vars(self), "files": list(self.files)}


def publish_crls(hsm: Hsm, registry: Registry, next_update: dt.timedelta,
                 write: Callable[[str, bytes], None]) -> list[PublishedCrl]:
    """A new CRL of every CA version in the token, each handed to ``write(name, data)``
    as DER and PEM, then an event ``crl-published``."""
    published = []
    for role in CRL_ISSUERS:
        for version in certificates_by_version(hsm, role):
            crl = build_crl(hsm, registry, role, version, next_update)
            name = crl_file_name(role.value, version)
            write(name, crl.public_bytes(serialization.Encoding.DER))
            write(name + ".pem", crl.public_bytes(serialization.Encoding.PEM))
            number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
            assert crl.next_update_utc is not None
            entry = PublishedCrl(role.value, version, number, len(crl),
                                 crl.last_update_utc.isoformat(), crl.next_update_utc.isoformat(),
                                 (name, name + ".pem"))
            registry.log_event(Event("crl-published", None, detail={
                "role": role.value, "version": version, "number": number,
                "entries": len(crl)}))
            published.append(entry)
    return published
