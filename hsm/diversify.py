"""Per-card SCP03 static keys, derived inside the token from the master keys.

card key = AES-ECB(master[purpose], block) with ``CKM_AES_ECB_ENCRYPT_DATA``, where
block = key set (1) ‖ purpose (1) ‖ 00×6 ‖ card serial as BCD, F-padded (8). The
derived keys are session objects: sensitive (their value cannot be read), extractable
only so that they can be wrapped under a card's DEK for PUT KEY. Only the card-maker
path (the rig manufacturing blank virtual cards) reads a derived value, and only for
the issuer key set a blank card is born with.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import IntEnum

import pkcs11
from pkcs11 import Attribute, Mechanism

from cardlib.constants import KCV_INPUT

from . import derivation
from .derivation import DERIVED_KEY_BITS, Derivation, DeriveKeys, current_master
from .roles import KeyRole
from .token import Hsm

CARD_KEY_BITS = DERIVED_KEY_BITS


class KeySet(IntEnum):
    ISSUER_TRANSPORT = 0x01  # the issuer security domain a blank card is born with
    RESIDENT_REGISTRY = 0x02  # the resident-registry AP (record code)


class KeyPurpose(IntEnum):
    ENC = 0x01
    MAC = 0x02
    DEK = 0x03


MASTER_OF = {KeyPurpose.ENC: KeyRole.CARD_MASTER_ENC, KeyPurpose.MAC: KeyRole.CARD_MASTER_MAC,
             KeyPurpose.DEK: KeyRole.CARD_MASTER_DEK}


def serial_bcd(serial: str) -> bytes:
    if len(serial) != 15 or not serial.isascii() or not serial.isdigit():
        raise ValueError("card serial must be 15 digits")
    return bytes.fromhex(serial + "F")


def diversification_block(serial: str, key_set: KeySet, purpose: KeyPurpose) -> bytes:
    return bytes((key_set, purpose)) + bytes(6) + serial_bcd(serial)


CARD_KEY = Derivation({
    Attribute.SIGN: True,  # AES-CMAC for the SCP03 KDF
    Attribute.ENCRYPT: True,  # key check values
    Attribute.WRAP: True,  # a DEK wraps keys for PUT KEY
}, wrappable=True)


def _derive(session: pkcs11.Session, master: pkcs11.SecretKey, block: bytes, *,
            readable: bool = False) -> pkcs11.SecretKey:
    return CARD_KEY.derive(master, block, readable=readable)


@dataclass
class CardKeys:
    """Handles to one card's derived key set inside the token."""

    hsm: Hsm
    serial: str
    key_set: KeySet
    handles: dict[KeyPurpose, pkcs11.SecretKey]

    def __repr__(self) -> str:
        return f"CardKeys(serial={self.serial}, key_set={self.key_set.name})"

    def cmac(self, purpose: KeyPurpose, data: bytes) -> bytes:
        key = self.handles[purpose]
        return self.hsm.call(lambda _s: bytes(key.sign(data, mechanism=Mechanism.AES_CMAC)))

    def key_check_value(self, purpose: KeyPurpose) -> bytes:
        key = self.handles[purpose]
        return self.hsm.call(lambda _s: bytes(key.encrypt(KCV_INPUT, mechanism=Mechanism.AES_ECB)))[:3]

    def wrapped_under_dek_of(self, wrapper: CardKeys, purpose: KeyPurpose) -> bytes:
        """This set's ``purpose`` key, AES-CBC (zero IV) under ``wrapper``'s DEK: the
        GlobalPlatform PUT KEY encryption, done inside the token."""
        dek, key = wrapper.handles[KeyPurpose.DEK], self.handles[purpose]
        return self.hsm.call(lambda _s: bytes(
            dek.wrap_key(key, mechanism=Mechanism.AES_CBC, mechanism_param=bytes(16))))


def _key_set(hsm: Hsm, serial: str, key_set: KeySet) -> DeriveKeys[KeyPurpose]:
    block_of = {p: diversification_block(serial, key_set, p) for p in KeyPurpose}

    def derive(session: pkcs11.Session, readable: bool) -> dict[KeyPurpose, pkcs11.SecretKey]:
        masters = {p: current_master(session, hsm, role) for p, role in MASTER_OF.items()}
        return {p: _derive(session, masters[p], block_of[p], readable=readable)
                for p in KeyPurpose}

    return derive


@contextmanager
def card_keys(hsm: Hsm, serial: str, key_set: KeySet) -> Iterator[CardKeys]:
    """Derive a card's key set in the token for the duration of the ``with`` block."""
    with derivation.derived_keys(hsm, _key_set(hsm, serial, key_set)) as handles:
        yield CardKeys(hsm, serial, key_set, handles)


def export_for_card_maker(hsm: Hsm, serial: str) -> dict[KeyPurpose, bytes]:
    """The issuer transport keys of a new blank card, as a card maker loads them into
    the chip. Used only by the rig when it manufactures a virtual blank card."""
    return derivation.export_for_card_maker(hsm, _key_set(hsm, serial, KeySet.ISSUER_TRANSPORT))
