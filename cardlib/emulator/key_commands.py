"""Key commands of the virtual card: GET CHALLENGE, INTERNAL AUTHENTICATE, COMPUTE
DIGITAL SIGNATURE (JPKI P1 00–05; the 券面 APs' presence key), SET SESSION KEY routing
and on-card key generation (real-card.md §2.1, §4.6, §4.7, §7.5, §8)."""

from __future__ import annotations

import hashlib
import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from ..apdu import CommandApdu
from ..constants import Aid, CardInfoFile, CommonFile, SurfaceFile
from ..public_key import encode_public_key
from ..status import SW, CardStatus
from .card_core import CardCore
from .raw_rsa import PKCS1_OVERHEAD, sign_raw_pkcs1

MAX_CHALLENGE = 256
MAX_MESSAGE = 255
SHA256_SIZE = 32
PSS_SALT_LENGTH = 32  # ours: RC does not know the card's salt length
P2_DEFAULT_KEY = 0x00
INTERNAL_AUTH_KEYS = {Aid.COMMON.hex(): f"{CommonFile.AUTH_KEY:04X}"}
PRESENCE_KEYS = {Aid.CARD_INFO.hex(): f"{CardInfoFile.PRESENCE_KEY:04X}",
                 Aid.CARD_SURFACE.hex(): f"{SurfaceFile.PRESENCE_KEY:04X}"}
SESSION_KEY_FID = f"{CardInfoFile.SESSION_KEY:04X}"
CARD_INFO_PIN_FID = f"{CardInfoFile.PIN:04X}"
NO_KEY_DELIVERY = (Aid.COMMON.hex(), Aid.CARD_SURFACE.hex())  # SET SESSION KEY: 66F1


def _pss() -> padding.PSS:
    return padding.PSS(padding.MGF1(hashes.SHA256()), PSS_SALT_LENGTH)


def sign_by_p1(key: rsa.RSAPrivateKey, p1: int, data: bytes) -> bytes:
    """The six schemes of COMPUTE DIGITAL SIGNATURE (real-card.md §7.5); wrong sizes 6700."""
    if p1 > 0x05:
        raise CardStatus(SW.INCORRECT_P1P2)
    hashed_input = p1 in (0x02, 0x04)
    limit = key.key_size // 8 - PKCS1_OVERHEAD if p1 == 0x00 else MAX_MESSAGE
    if not data or len(data) > limit or (hashed_input and len(data) != SHA256_SIZE):
        raise CardStatus(SW.WRONG_LENGTH)
    if p1 == 0x00:
        return sign_raw_pkcs1(key, data)
    if p1 == 0x01:
        return sign_raw_pkcs1(key, hashlib.sha256(data).digest())
    if p1 == 0x02:
        return key.sign(data, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
    if p1 == 0x03:
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    if p1 == 0x04:
        return key.sign(data, _pss(), Prehashed(hashes.SHA256()))
    return key.sign(data, _pss(), hashes.SHA256())


class KeyCommands(CardCore):
    def _get_challenge(self, apdu: CommandApdu) -> bytes:
        """1–256 bytes, each length exactly (Le 00 = 256); an extended Le answers 6985."""
        if apdu.p1 or apdu.p2:
            raise CardStatus(SW.INCORRECT_P1P2)
        if apdu.extended:
            raise CardStatus(SW.CONDITIONS_NOT_SATISFIED)
        length = apdu.ne or 0
        if not 1 <= length <= MAX_CHALLENGE or apdu.data:
            raise CardStatus(SW.WRONG_LENGTH)
        challenge = secrets.token_bytes(length)
        self.ram.challenge = challenge
        return challenge

    def _rsa_key(self, fid: str) -> rsa.RSAPrivateKey:
        pem = self._app().keys.get(fid)
        if pem is None:
            raise CardStatus(SW.REFERENCED_DATA_NOT_FOUND)
        key = self._key_from_pem(pem)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise CardStatus(SW.REFERENCED_DATA_NOT_FOUND)
        return key

    def _compute_digital_signature(self, apdu: CommandApdu) -> bytes:
        """JPKI: ``80 2A P1 80|sfi`` after the key's PIN. 券面 APs: ``80 2A 00 00`` with the
        AP's presence key and no credential."""
        aid = self.ram.selected_aid or ""
        if aid in PRESENCE_KEYS:
            if apdu.p2 != P2_DEFAULT_KEY:
                raise CardStatus(SW.INCORRECT_P1P2)
            fid = PRESENCE_KEYS[aid]
        else:
            app = self._app()
            if not app.key_pins or apdu.p2 == P2_DEFAULT_KEY:
                raise CardStatus(SW.INCORRECT_P1P2)
            if apdu.p1 > 0x05:
                raise CardStatus(SW.INCORRECT_P1P2)
            fid = self._referenced_fid(apdu.p2, app.keys, SW.REFERENCED_DATA_NOT_FOUND)
            pin = app.key_pins.get(fid)
            if pin is None or pin not in self.ram.verified:
                raise CardStatus(SW.SECURITY_STATUS_NOT_SATISFIED)
        return sign_by_p1(self._rsa_key(fid), apdu.p1, apdu.data)

    def _internal_authenticate(self, apdu: CommandApdu) -> bytes:
        """``00 88 00 99 Lc <1–255 bytes> 00``: only the 共通AP key 0019 answers, with a
        deterministic sha256WithRSA signature; PIN-protected keys 6982, the others 6985."""
        if apdu.p1 != 0:
            raise CardStatus(SW.INCORRECT_P1P2)
        app = self._app()
        fid = self._referenced_fid(apdu.p2, app.keys, SW.REFERENCED_DATA_NOT_FOUND)
        if INTERNAL_AUTH_KEYS.get(self.ram.selected_aid or "") != fid:
            refusal = SW.SECURITY_STATUS_NOT_SATISFIED if fid in app.key_pins else \
                SW.CONDITIONS_NOT_SATISFIED
            raise CardStatus(refusal)
        if not 1 <= len(apdu.data) <= MAX_MESSAGE:
            raise CardStatus(SW.WRONG_LENGTH)
        return self._rsa_key(fid).sign(apdu.data, padding.PKCS1v15(), hashes.SHA256())

    def _set_session_key(self, apdu: CommandApdu) -> bytes:
        """``80 AE 00 00``: only the card-info AP delivers a session key, after PIN 0011
        (checked before anything is decrypted); 共通AP/surface 66F1; JPKI/住基 6982."""
        if apdu.p1 or apdu.p2:
            raise CardStatus(SW.INCORRECT_P1P2)
        aid = self.ram.selected_aid
        if aid != Aid.CARD_INFO.hex():
            if aid is None or aid in NO_KEY_DELIVERY or aid == Aid.ISSUER_SECURITY_DOMAIN.hex():
                raise CardStatus(SW.SECURITY_ENVIRONMENT_FAULTY)
            raise CardStatus(SW.SECURITY_STATUS_NOT_SATISFIED)
        if CARD_INFO_PIN_FID not in self.ram.verified:
            raise CardStatus(SW.SECURITY_STATUS_NOT_SATISFIED)
        text_sm = getattr(self, "text_sm", None)
        if text_sm is None or self._app().keys.get(SESSION_KEY_FID) is None:
            raise CardStatus(SW.CONDITIONS_NOT_SATISFIED)
        sw = text_sm.set_session_key(self._rsa_key(SESSION_KEY_FID), apdu.data)
        if sw != SW.OK:
            raise CardStatus(sw)
        return b""

    def _generate_key_pair(self, apdu: CommandApdu) -> bytes:
        """Personalisation, or the counter session (JPKI 0017/001A): a new RSA-2048 key
        replaces the old one; answers the public key."""
        self._require_writable()
        if apdu.p1 != 0:
            raise CardStatus(SW.INCORRECT_P1P2)
        keys = self._app().keys
        fid = self._referenced_fid(apdu.p2, keys, SW.REFERENCED_DATA_NOT_FOUND)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._store_new_key(keys, fid, key)
        return encode_public_key(key.public_key())
