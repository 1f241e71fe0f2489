"""The card maker of the test rig: blank virtual cards born with the keys a real card
maker would put in them, exported from the rig's token for that purpose only."""

from __future__ import annotations

import secrets
from pathlib import Path

from cardlib.constants import Aid
from cardlib.emulator.profiles import blank_operator_card, blank_resident_card, random_serial
from cardlib.emulator.state import StateFile
from hsm.diversify import KeyPurpose, export_for_card_maker
from hsm.piv_management import export_for_card_maker as export_management_key
from hsm.token import Hsm

from ..errors import RigError

KINDS = ("resident", "operator")


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


def kind_of(path: Path) -> str:
    """What the card kept in ``path`` is: ``operator`` (a PIV card) or ``resident``."""
    return "operator" if Aid.PIV.hex() in StateFile(path).load().apps else "resident"


def card_kind(path: Path, wanted: str | None) -> str:
    """The kind of the card at ``path``: the kind it holds if it exists, else ``wanted``
    (default resident). An existing card of another kind than ``wanted`` is refused,
    never silently inserted as it is."""
    if not path.exists():
        return wanted or "resident"
    held = kind_of(path)
    if wanted is not None and held != wanted:
        raise RigError(f"{path} holds a {held} card, but --kind {wanted} was asked for: give "
                       f"--state a new file for a new {wanted} card, or leave out --kind to "
                       "insert this one as it is")
    return held
