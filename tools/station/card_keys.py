"""Bridges the token's per-card keys (hsm.diversify) to the SCP03 code (cardlib.scp03):
the station's secure channels are keyed in the token, never in this process."""

from __future__ import annotations

from cardlib.scp03.keys import StaticKeyPrfs
from hsm.diversify import CARD_KEY_BITS, CardKeys, KeyPurpose


def token_prfs(keys: CardKeys) -> StaticKeyPrfs:
    """SCP03 session keys computed by CKM_AES_CMAC on the token's derived card keys."""
    return StaticKeyPrfs(enc=lambda data: keys.cmac(KeyPurpose.ENC, data),
                         mac=lambda data: keys.cmac(KeyPurpose.MAC, data),
                         key_bits=CARD_KEY_BITS)


def put_key_components(keys: CardKeys, under: CardKeys) -> list[tuple[bytes, bytes]]:
    """ENC, MAC, DEK of ``keys`` wrapped under ``under``'s DEK, with KCVs (in the token)."""
    return [(keys.wrapped_under_dek_of(under, purpose), keys.key_check_value(purpose))
            for purpose in (KeyPurpose.ENC, KeyPurpose.MAC, KeyPurpose.DEK)]
