"""The key inventory by role. Every static key is found by its label.

Label = ``juki/<role>/v<version>``; rotation adds a new version beside the old one,
so cards certified under an old version keep verifying.
"""

from __future__ import annotations

import re
from enum import StrEnum

LABEL_PREFIX = "juki/"
_LABEL_RE = re.compile(r"^juki/(?P<role>[a-z0-9-]+)/v(?P<version>[1-9][0-9]*)$")


class KeyRole(StrEnum):
    # The auth CA: JPKI user-authentication certificates and the 共通AP card certificate.
    RESIDENT_ISSUING_CA = "resident-issuing-ca"
    RESIDENT_SIGN_CA = "resident-sign-ca"  # JPKI signature certificates (JPKI EF 0002)
    # Signed card-info EF 0003 before issue 12; cv-card-info-signer does now. Not created
    # by `hsm init` any more; older tokens keep theirs.
    INTEGRITY_SIGNER = "card-info-integrity-signer"
    CARD_MASTER_ENC = "card-master-enc"  # SCP03 static keys of every card derive from these
    CARD_MASTER_MAC = "card-master-mac"
    CARD_MASTER_DEK = "card-master-dek"
    OPERATOR_CA = "operator-ca"  # certifies operator (PIV) card keys
    OPERATOR_CARD_MANAGEMENT = "operator-card-management-master"  # PIV 9B keys derive from it
    OPERATOR_SESSION_MAC = "operator-session-mac"  # MACs the station's login sessions
    AUDIT_SIGNER = "audit-checkpoint-signer"  # signs the provision log's checkpoints
    AUDIT_ENTRY_MAC = "audit-entry-mac"  # MACs every provision log entry (with its index)
    AUDIT_NOTE_SIGNER = "audit-checkpoint-note-signer"  # Ed25519: C2SP checkpoint notes
    # Our CV hierarchy (docs/resident-card.md): RSA-2048, CKA_ID = the 16-byte CV key ID.
    CV_ROOT = "cv-root"  # 7000020: MF GET DATA 00F8 (certifies 7000022)
    CV_MF_INTERMEDIATE = "cv-mf-intermediate"  # 7000022: MF 7F21 (the 共通AP key 0019)
    CV_CARD_INFO_CA = "cv-card-info-ca"  # 7000033: card-info EF 0004 (certifies 7000031)
    CV_CARD_INFO_SIGNER = "cv-card-info-signer"  # 7000031: card-info DF33 and DF52
    CV_SURFACE_CA = "cv-surface-ca"  # 7000023: surface EF 0004 (certifies 7000021)
    CV_SURFACE_SIGNER = "cv-surface-signer"  # 7000021: surface DF13, DF28, DF43
    # A shared PostgreSQL registry (issue 14), EC P-256 (hsm.tls_keys):
    STATION_CA = "registry-station-ca"  # registry operator's token: certifies stations' TLS keys
    REGISTRY_TLS = "registry-tls-client"  # station's token: its TLS client key to the registry


CARD_MASTER_ROLES = (KeyRole.CARD_MASTER_ENC, KeyRole.CARD_MASTER_MAC, KeyRole.CARD_MASTER_DEK)
MAC_KEY_ROLES = (KeyRole.OPERATOR_SESSION_MAC, KeyRole.AUDIT_ENTRY_MAC)
SECRET_KEY_ROLES = (*CARD_MASTER_ROLES, KeyRole.OPERATOR_CARD_MANAGEMENT, *MAC_KEY_ROLES)


SIGNER_SUBJECTS = {
    KeyRole.RESIDENT_ISSUING_CA: "Juki Resident Issuing CA",
    KeyRole.RESIDENT_SIGN_CA: "Juki Resident Signature CA",
    KeyRole.INTEGRITY_SIGNER: "Juki Card-Info Integrity Signer",
    KeyRole.OPERATOR_CA: "Juki Operator CA",
    KeyRole.AUDIT_SIGNER: "Juki Provision Log Checkpoint Signer",
}
# The other signers are self-signed end entities.
CERTIFIES_OTHERS = {KeyRole.RESIDENT_ISSUING_CA, KeyRole.RESIDENT_SIGN_CA, KeyRole.OPERATOR_CA}


def label_for(role: KeyRole, version: int) -> str:
    return f"{LABEL_PREFIX}{role.value}/v{version}"


def parse_label(label: str) -> tuple[str, int] | None:
    match = _LABEL_RE.match(label)
    if not match:
        return None
    return match["role"], int(match["version"])
