"""Key commands of the virtual card: GET CHALLENGE, INTERNAL AUTHENTICATE, COMPUTE
DIGITAL SIGNATURE (JPKI) and on-card key generation."""

from __future__ import annotations

import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from ..apdu import CommandApdu
from ..constants import P2_SELECTED_KEY
from ..digestinfo import prehashed_digest_info
from ..public_key import encode_public_key
from ..status import SW
from .card_core import CardCore, CardStatus

MAX_CHALLENGE = 32


class KeyCommands(CardCore):
    def _get_challenge(self, apdu: CommandApdu) -> bytes:
        if apdu.p1 or apdu.p2:
            raise CardStatus(SW.INCORRECT_P1P2)
        length = apdu.ne or 0
        if not 1 <= length <= MAX_CHALLENGE:
            raise CardStatus(SW.WRONG_LENGTH)
        challenge = secrets.token_bytes(length)
        self.ram.challenge = challenge
        return challenge

    def _private_key(self) -> rsa.RSAPrivateKey:
        keys = self._app().keys
        pem = keys[self._selected_fid(keys, SW.REFERENCED_DATA_NOT_FOUND)]
        if pem is None:
            raise CardStatus(SW.REFERENCED_DATA_NOT_FOUND)
        key = self._key_from_pem(pem)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise CardStatus(SW.REFERENCED_DATA_NOT_FOUND)
        return key

    def _compute_digital_signature(self, apdu: CommandApdu) -> bytes:
        """JPKI: PKCS#1 v1.5 type-1 signature over a host-built DigestInfo, with the
        selected key, after that key's PIN."""
        if apdu.p1 != 0 or apdu.p2 != P2_SELECTED_KEY:
            raise CardStatus(SW.INCORRECT_P1P2)
        key = self._private_key()
        pin = self._app().key_pins.get(self.ram.selected_fid or "")
        if pin is not None and pin not in self.ram.verified:
            raise CardStatus(SW.SECURITY_STATUS_NOT_SATISFIED)
        prehashed = prehashed_digest_info(apdu.data)
        if prehashed is None:
            raise CardStatus(SW.WRONG_DATA)
        algorithm, digest = prehashed
        return key.sign(digest, padding.PKCS1v15(), Prehashed(algorithm))

    def _internal_authenticate(self, apdu: CommandApdu) -> bytes:
        if apdu.p1 != 0 or apdu.p2 != P2_SELECTED_KEY:
            raise CardStatus(SW.INCORRECT_P1P2)
        if not apdu.data:
            raise CardStatus(SW.WRONG_LENGTH)
        key = self._private_key()
        return key.sign(apdu.data, padding.PKCS1v15(), hashes.SHA256())

    def _generate_key_pair(self, apdu: CommandApdu) -> bytes:
        self._require_personalisable()
        if apdu.p1 != 0 or apdu.p2 != P2_SELECTED_KEY:
            raise CardStatus(SW.INCORRECT_P1P2)
        keys = self._app().keys
        fid = self._selected_fid(keys, SW.REFERENCED_DATA_NOT_FOUND)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._store_new_key(keys, fid, key)
        return encode_public_key(key.public_key())
