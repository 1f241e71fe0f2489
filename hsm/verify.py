"""Signature checks inside the token, and single-use challenges from its RNG.

A public key to check against is imported once as a session object and cached by
its modulus, so repeated checks against the same card cost one C_Verify each. An RSA
key whose public exponent is not an odd 2^16 < e < 2^256 (FIPS 186-5 §5.4) is not
imported: a check against it fails (and says why in the log), it never raises.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict

import pkcs11
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import decode_ec_public_key

from .errors import HsmError
from .token import Hsm

log = logging.getLogger(__name__)

CACHE_SIZE = 64
CHALLENGE_BYTES = 32
RSA_EXPONENT_MIN = 1 << 16  # exclusive bounds, FIPS 186-5 §5.4 (e)
RSA_EXPONENT_LIMIT = 1 << 256


class UnsupportedKeyError(HsmError):
    """A public key the token is not asked to check signatures against (names why)."""


def rsa_public_template(key: rsa.RSAPublicKey) -> dict[Attribute, object]:
    """CKA_MODULUS and CKA_PUBLIC_EXPONENT (big-endian, minimal) of ``key``."""
    numbers = key.public_numbers()
    e = numbers.e
    if not (RSA_EXPONENT_MIN < e < RSA_EXPONENT_LIMIT and e & 1):
        shown = f"{e}" if e.bit_length() <= 64 else f"of {e.bit_length()} bits"
        raise UnsupportedKeyError(f"RSA public exponent {shown} is not an odd "
                                  "2^16 < e < 2^256 (FIPS 186-5)")
    return {
        Attribute.CLASS: ObjectClass.PUBLIC_KEY,
        Attribute.KEY_TYPE: KeyType.RSA,
        Attribute.MODULUS: numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big"),
        Attribute.PUBLIC_EXPONENT: e.to_bytes((e.bit_length() + 7) // 8, "big"),
    }


class PublicKeyCache:
    """Session public-key objects for the RSA keys we check signatures against."""

    def __init__(self, hsm: Hsm) -> None:
        self._hsm = hsm
        self._objects: OrderedDict[bytes, pkcs11.PublicKey] = OrderedDict()

    def _object(self, session: pkcs11.Session,
                key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey) -> pkcs11.PublicKey:
        spki = key.public_bytes(serialization.Encoding.DER,
                                serialization.PublicFormat.SubjectPublicKeyInfo)
        fingerprint = hashlib.sha256(spki).digest()
        obj = self._objects.get(fingerprint)
        if obj is None:
            if isinstance(key, rsa.RSAPublicKey):
                template = rsa_public_template(key)
            else:
                template = dict(decode_ec_public_key(spki))
            obj = session.create_object({**template, Attribute.TOKEN: False, Attribute.VERIFY: True})
            self._objects[fingerprint] = obj
            while len(self._objects) > CACHE_SIZE:
                _, old = self._objects.popitem(last=False)
                old.destroy()
        else:
            self._objects.move_to_end(fingerprint)
        return obj

    def verify_rsa_sha256(self, key: rsa.RSAPublicKey, data: bytes, signature: bytes) -> bool:
        """True only if ``signature`` is a valid sha256WithRSAEncryption over ``data``
        (False, logged, for a key with an exponent the token is not asked to use)."""
        try:
            rsa_public_template(key)
        except UnsupportedKeyError as exc:
            log.warning("signature check refused: %s", exc)
            return False

        def check(session: pkcs11.Session) -> bool:
            obj = self._object(session, key)
            try:
                return bool(obj.verify(data, signature, mechanism=Mechanism.SHA256_RSA_PKCS))
            except (pkcs11.SignatureInvalid, pkcs11.SignatureLenRange):
                return False

        try:
            return self._hsm.call(check)
        except Exception:
            self._objects.clear()  # the session may have been replaced
            raise

    def verify_ecdsa_sha256(self, key: ec.EllipticCurvePublicKey, data: bytes,
                            der_signature: bytes) -> bool:
        """True only if ``der_signature`` is a valid ecdsa-with-SHA256 over ``data``.
        The token checks (CKM_ECDSA on the digest: SoftHSM has no hashing ECDSA)."""
        try:
            r, s = decode_dss_signature(der_signature)
        except ValueError:
            return False
        size = (key.curve.key_size + 7) // 8
        if not (0 < r < 1 << (8 * size) and 0 < s < 1 << (8 * size)):
            return False
        raw = r.to_bytes(size, "big") + s.to_bytes(size, "big")
        digest = hashlib.sha256(data).digest()

        def check(session: pkcs11.Session) -> bool:
            try:
                return bool(self._object(session, key).verify(digest, raw,
                                                              mechanism=Mechanism.ECDSA))
            except (pkcs11.SignatureInvalid, pkcs11.SignatureLenRange):
                return False

        try:
            return self._hsm.call(check)
        except Exception:
            self._objects.clear()
            raise

    def verify_sha256(self, key: object, data: bytes, signature: bytes) -> bool:
        """RSA PKCS#1 v1.5 or ECDSA (DER) over SHA-256, by the key's type."""
        if isinstance(key, rsa.RSAPublicKey):
            return self.verify_rsa_sha256(key, data, signature)
        if isinstance(key, ec.EllipticCurvePublicKey):
            return self.verify_ecdsa_sha256(key, data, signature)
        return False


class ChallengeBook:
    """Hands out random challenges from the token and accepts each one only once."""

    def __init__(self, hsm: Hsm) -> None:
        self._hsm = hsm
        self._outstanding: set[bytes] = set()
        self._lock = threading.Lock()

    def issue(self, size: int = CHALLENGE_BYTES) -> bytes:
        challenge = self._hsm.random_bytes(size)
        with self._lock:
            self._outstanding.add(challenge)
        return challenge

    def redeem(self, challenge: bytes) -> bool:
        """True the first time an issued challenge is redeemed, False ever after."""
        with self._lock:
            if challenge in self._outstanding:
                self._outstanding.discard(challenge)
                return True
            return False
