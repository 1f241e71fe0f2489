"""The card maker of the test rig: blank virtual cards born with the keys a real card
maker would put in them, exported from the rig's token for that purpose only."""

from __future__ import annotations

import secrets
from pathlib import Path

from cardlib.emulator.profiles import blank_operator_card, blank_resident_card, random_serial
from cardlib.emulator.state import StateFile
from hsm.diversify import KeyPurpose, export_for_card_maker
from hsm.piv_management import export_for_card_maker as export_management_key
from hsm.token import Hsm


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
