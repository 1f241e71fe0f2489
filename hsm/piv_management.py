"""Per-card PIV management keys (9B), derived inside the token from one master.

card key = AES-ECB(master, card GUID) with ``CKM_AES_ECB_ENCRYPT_DATA``: the GUID is
one AES block and readable from any PIV card's CHUID, so a station finds the key of
the card in its reader without any table. The derived key is a session object that can
only encrypt or decrypt single blocks for the mutual authentication; only the card-maker
path (the rig making a blank virtual card) reads a derived value.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism

from .keys import current_version, role_key
from .roles import KeyRole
from .token import Hsm

GUID_BYTES = 16
MANAGEMENT_KEY_BITS = 128


def _derive(session: pkcs11.Session, hsm: Hsm, guid: bytes, *,
            readable: bool) -> pkcs11.SecretKey:
    if len(guid) != GUID_BYTES:
        raise ValueError("a PIV card GUID is 16 bytes")
    version = current_version(hsm, KeyRole.OPERATOR_CARD_MANAGEMENT)
    master = role_key(session, KeyRole.OPERATOR_CARD_MANAGEMENT, version)
    return master.derive_key(
        KeyType.AES, MANAGEMENT_KEY_BITS, mechanism=Mechanism.AES_ECB_ENCRYPT_DATA,
        mechanism_param=guid,
        template={Attribute.TOKEN: False, Attribute.SENSITIVE: not readable,
                  Attribute.EXTRACTABLE: readable, Attribute.ENCRYPT: True,
                  Attribute.DECRYPT: True, Attribute.SIGN: False, Attribute.WRAP: False},
    )


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
    with hsm.locked() as session:
        key = _derive(session, hsm, guid, readable=False)
    try:
        yield TokenBlockCipher(hsm, key)
    finally:
        with hsm.locked(), suppress(pkcs11.PKCS11Error):
            key.destroy()


def export_for_card_maker(hsm: Hsm, guid: bytes) -> bytes:
    """The management key a card maker loads into a new blank operator card (rig only)."""
    with hsm.locked() as session:
        key = _derive(session, hsm, guid, readable=True)
        try:
            return bytes(key[Attribute.VALUE])
        finally:
            key.destroy()
