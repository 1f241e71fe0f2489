"""Per-card PIV management keys (9B), derived inside the token from one master.

card key = AES-ECB(master, card GUID) with ``CKM_AES_ECB_ENCRYPT_DATA``: the GUID is
one AES block and readable from any PIV card's CHUID, so a station finds the key of
the card in its reader without any table. The derived key is a session object that can
only encrypt or decrypt single blocks for the mutual authentication; only the card-maker
path (the rig making a blank virtual card) reads a derived value.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pkcs11
from pkcs11 import Attribute, Mechanism

from . import derivation
from .derivation import Derivation, DeriveKeys, current_master
from .roles import KeyRole
from .token import Hsm

GUID_BYTES = 16
MANAGEMENT_KEY = Derivation({Attribute.ENCRYPT: True, Attribute.DECRYPT: True,
                             Attribute.SIGN: False, Attribute.WRAP: False})


def _management_key(hsm: Hsm, guid: bytes) -> DeriveKeys[bytes]:
    if len(guid) != GUID_BYTES:
        raise ValueError("a PIV card GUID is 16 bytes")

    def derive(session: pkcs11.Session, readable: bool) -> dict[bytes, pkcs11.SecretKey]:
        master = current_master(session, hsm, KeyRole.OPERATOR_CARD_MANAGEMENT)
        return {guid: MANAGEMENT_KEY.derive(master, guid, readable=readable)}

    return derive


class TokenBlockCipher:
    """One card's management key as a ``cardlib.apps.piv.BlockCipher``."""

    def __init__(self, hsm: Hsm, key: pkcs11.SecretKey) -> None:
        self._hsm = hsm
        self._key = key

    def __repr__(self) -> str:
        return "TokenBlockCipher(<key in token>)"

    def encrypt_block(self, block: bytes) -> bytes:
        return self._hsm.call(lambda _s: bytes(self._key.encrypt(block, mechanism=Mechanism.AES_ECB)))

    def decrypt_block(self, block: bytes) -> bytes:
        return self._hsm.call(lambda _s: bytes(self._key.decrypt(block, mechanism=Mechanism.AES_ECB)))


@contextmanager
def management_key(hsm: Hsm, guid: bytes) -> Iterator[TokenBlockCipher]:
    """The management key of the card named ``guid``, for the ``with`` block."""
    with derivation.derived_keys(hsm, _management_key(hsm, guid)) as keys:
        yield TokenBlockCipher(hsm, keys[guid])


def export_for_card_maker(hsm: Hsm, guid: bytes) -> bytes:
    """The management key a card maker loads into a new blank operator card (rig only)."""
    return derivation.export_for_card_maker(hsm, _management_key(hsm, guid))[guid]
