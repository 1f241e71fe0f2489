"""Bridges the token's per-card keys (hsm.diversify) to the SCP03 code (cardlib.scp03),
and manufactures blank virtual cards the way a card maker would."""

from __future__ import annotations

import secrets
from pathlib import Path

from cardlib.emulator.profiles import blank_operator_card, blank_resident_card, random_serial
from cardlib.emulator.state import StateFile
from cardlib.scp03.keys import StaticKeyPrfs
from hsm.diversify import CARD_KEY_BITS, CardKeys, KeyPurpose, export_for_card_maker
from hsm.piv_management import export_for_card_maker as export_management_key
from hsm.token import Hsm


def token_prfs(keys: CardKeys) -> StaticKeyPrfs:
    """SCP03 session keys computed by CKM_AES_CMAC on the token's derived card keys."""
    return StaticKeyPrfs(enc=lambda data: keys.cmac(KeyPurpose.ENC, data),
                         mac=lambda data: keys.cmac(KeyPurpose.MAC, data),
                         key_bits=CARD_KEY_BITS)


def put_key_components(keys: CardKeys, under: CardKeys) -> list[tuple[bytes, bytes]]:
    """ENC, MAC, DEK of ``keys`` wrapped under ``under``'s DEK, with KCVs (in the token)."""
    return [(keys.wrapped_under_dek_of(under, purpose), keys.key_check_value(purpose))
            for purpose in (KeyPurpose.ENC, KeyPurpose.MAC, KeyPurpose.DEK)]


def manufacture_blank_card(hsm: Hsm, path: Path, serial: str | None = None) -> str:
    """A new blank resident card at ``path``, born with its issuer transport keys."""
    serial = serial or random_serial()
    keys = export_for_card_maker(hsm, serial)
    StateFile(path).save(blank_resident_card(serial, {
        "enc": keys[KeyPurpose.ENC], "mac": keys[KeyPurpose.MAC], "dek": keys[KeyPurpose.DEK]}))
    return serial


def manufacture_blank_operator_card(hsm: Hsm, path: Path, serial: str | None = None) -> str:
    """A new blank PIV operator card at ``path``: a random GUID and the management key
    derived for it in the token (as a card maker provisioning for this network would)."""
    serial = serial or random_serial()
    guid = secrets.token_bytes(16)
    StateFile(path).save(blank_operator_card(serial, guid, export_management_key(hsm, guid)))
    return serial


def manufacture(kind: str, hsm: Hsm, path: Path) -> str:
    if kind == "operator":
        return manufacture_blank_operator_card(hsm, path)
    return manufacture_blank_card(hsm, path)
