"""Everything a station's token must hold, created idempotently (`juki hsm init`)."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509

from .ca import ensure_signer_certificate
from .cv_hierarchy import ensure_cv_hierarchy
from .eddsa import ensure_ed25519_key
from .keys import ensure_card_masters, ensure_secret_keys
from .roles import KeyRole
from .token import Hsm


@dataclass(frozen=True)
class StationKeys:
    keys: list[tuple[str, bool]]  # (label, created now)
    ca_certificate: x509.Certificate

    @property
    def created(self) -> bool:
        return any(created for _, created in self.keys)


def ensure_station_keys(hsm: Hsm) -> StationKeys:
    ca = ensure_signer_certificate(hsm, KeyRole.RESIDENT_ISSUING_CA)
    sign_ca = ensure_signer_certificate(hsm, KeyRole.RESIDENT_SIGN_CA)
    operator_ca = ensure_signer_certificate(hsm, KeyRole.OPERATOR_CA)
    audit = ensure_signer_certificate(hsm, KeyRole.AUDIT_SIGNER)
    keys = [(ca.label, ca.created), (sign_ca.label, sign_ca.created),
            (operator_ca.label, operator_ca.created),
            (audit.label, audit.created),
            *ensure_card_masters(hsm),
            *ensure_secret_keys(hsm, (KeyRole.OPERATOR_CARD_MANAGEMENT,
                                      KeyRole.OPERATOR_SESSION_MAC, KeyRole.AUDIT_ENTRY_MAC)),
            ensure_ed25519_key(hsm, KeyRole.AUDIT_NOTE_SIGNER),
            *ensure_cv_hierarchy(hsm)]
    return StationKeys(keys, ca.certificate)
