"""The card-info AP's proprietary secure messaging, card side (real-card.md §4.7).

The card OS checks access (the PIN 0011 verified in the clear) before it calls
``set_session_key``; this class then owns the session: the key K, the counter N and
whether a wrong command destroyed it. ``unwrap`` turns a CLA 08 command into the plain
command to execute (or a status word), ``wrap`` protects the answer under the same N.

Status words (measured): 6A80 for a refused SET SESSION KEY cryptogram, 6F00 for one
not below the modulus; 6988 for a wrong data object, indicator or padding (the last
also destroys the session); 69FC for any secure command after that, or outside a
session (6882 to SELECT); 6987 for CLA 0C.
"""

from __future__ import annotations

import hmac

from cryptography.hazmat.primitives.asymmetric import rsa

from .. import tlv
from ..apdu import CommandApdu, join_response
from ..constants import CLA_TEXT_SM_AUTHENTICATED_HEADER, Ins
from ..errors import CardDataError
from ..text_sm import (
    KEY_LENGTH,
    SEED_LENGTH,
    TAG_CRYPTOGRAM,
    TAG_READ_LENGTH,
    TAG_SESSION_KEY,
    TAG_SESSION_KEY_TEMPLATE,
    WHOLE_FILE,
    decrypt_value,
    encrypt_object,
    oaep,
)

SW_OK = 0x9000
SW_WRONG_DATA = 0x6A80
SW_UNKNOWN = 0x6F00
SW_SM_OBJECT_WRONG = 0x6988  # wrong data object, indicator ≠ 01, bad padding (wrong N)
SW_SM_SESSION_GONE = 0x69FC  # secure command after the session was destroyed, or without one
SW_SM_NOT_SUPPORTED = 0x6882  # SELECT with an SM CLA where no session exists
SW_SM_HEADER_AUTHENTICATION = 0x6987  # CLA 0C: header authentication is not offered
PLAINTEXT_PREFIX = bytes((TAG_SESSION_KEY_TEMPLATE, 2 + SEED_LENGTH, TAG_SESSION_KEY, SEED_LENGTH))


class CardInfoSecureMessaging:
    """Session state of the card-info AP's secure messaging (RAM: power-off clears it)."""

    def __init__(self) -> None:
        self._key: bytes | None = None
        self._counter = 0
        self._destroyed = False

    def reset(self) -> None:
        """No session: after power-off, SELECT of an AP, or a new SET SESSION KEY."""
        self._key, self._counter, self._destroyed = None, 0, False

    @property
    def active(self) -> bool:
        return self._key is not None and not self._destroyed

    @property
    def counter(self) -> int:
        return self._counter

    def set_session_key(self, private_key: rsa.RSAPrivateKey, cryptogram: bytes) -> int:
        """Decrypt the OAEP cryptogram of ``A0 22 80 20 <32>``; K = its first 16 bytes.
        Any attempt ends the session before it (a refused one leaves none)."""
        self.reset()
        modulus = private_key.public_key().public_numbers().n
        size = private_key.key_size // 8
        if len(cryptogram) != size:
            return SW_WRONG_DATA
        if int.from_bytes(cryptogram, "big") >= modulus:
            return SW_UNKNOWN
        try:
            plain = private_key.decrypt(cryptogram, oaep())
        except ValueError:
            return SW_WRONG_DATA  # another key, or not OAEP: one answer, no oracle
        if len(plain) != len(PLAINTEXT_PREFIX) + SEED_LENGTH or not hmac.compare_digest(
                plain[: len(PLAINTEXT_PREFIX)], PLAINTEXT_PREFIX):
            return SW_WRONG_DATA  # the CCS-key forms A0 {81 …} / A0 {80, 81} among them
        self._key = plain[len(PLAINTEXT_PREFIX): len(PLAINTEXT_PREFIX) + KEY_LENGTH]
        return SW_OK

    def unwrap(self, apdu: CommandApdu) -> CommandApdu | int:
        """The plain command (CLA 00) behind a CLA 08 one, or the status word refusing it."""
        if apdu.cla & ~0x03 & 0xFF == CLA_TEXT_SM_AUTHENTICATED_HEADER:
            return SW_SM_HEADER_AUTHENTICATION
        if self._key is None or self._destroyed:
            if not self._destroyed and apdu.ins == Ins.SELECT:
                return SW_SM_NOT_SUPPORTED
            return SW_SM_SESSION_GONE
        self._counter += 1  # every secure command advances N, whatever becomes of it
        try:
            objects = tlv.parse_all(apdu.data)
        except CardDataError:
            return SW_SM_OBJECT_WRONG
        expected = TAG_READ_LENGTH if apdu.ins == Ins.READ_BINARY else TAG_CRYPTOGRAM
        if len(objects) != 1 or objects[0].tag != expected:
            return SW_SM_OBJECT_WRONG
        value = objects[0].value
        if expected == TAG_READ_LENGTH:
            if len(value) != 3 or value[0] != 0x00:
                return SW_SM_OBJECT_WRONG
            wanted = int.from_bytes(value[1:], "big") or WHOLE_FILE
            return CommandApdu(0x00, apdu.ins, apdu.p1, apdu.p2, ne=wanted)
        if not value or value[0] != 0x01:
            return SW_SM_OBJECT_WRONG
        plain = decrypt_value(self._key, self._counter, value)
        if plain is None:
            self._destroyed = True  # a wrong N (or a forged cryptogram) ends the session
            return SW_SM_OBJECT_WRONG
        return CommandApdu(0x00, apdu.ins, apdu.p1, apdu.p2, plain, apdu.ne)

    def wrap(self, data: bytes, sw: int) -> bytes:
        """The R-APDU of a secure command: data as ``86 L 01 …`` under the command's N."""
        if not data or self._key is None:
            return join_response(b"", sw)
        return join_response(encrypt_object(self._key, self._counter, data), sw)
