"""Signature checks inside the token, and single-use challenges from its RNG.

A public key to check against is imported once as a session object and cached by
its modulus, so repeated checks against the same card cost one C_Verify each.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import pkcs11
from cryptography.hazmat.primitives.asymmetric import rsa
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass

from .token import Hsm

CACHE_SIZE = 64
CHALLENGE_BYTES = 32


class PublicKeyCache:
    """Session public-key objects for the RSA keys we check signatures against."""

    def __init__(self, hsm: Hsm) -> None:
        self._hsm = hsm
        self._objects: OrderedDict[bytes, pkcs11.PublicKey] = OrderedDict()

    def _object(self, session: pkcs11.Session, key: rsa.RSAPublicKey) -> pkcs11.PublicKey:
        numbers = key.public_numbers()
        modulus = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
        fingerprint = hashlib.sha256(modulus + numbers.e.to_bytes(4, "big")).digest()
        obj = self._objects.get(fingerprint)
        if obj is None:
            obj = session.create_object({
                Attribute.CLASS: ObjectClass.PUBLIC_KEY,
                Attribute.KEY_TYPE: KeyType.RSA,
                Attribute.TOKEN: False,
                Attribute.VERIFY: True,
                Attribute.MODULUS: modulus,
                Attribute.PUBLIC_EXPONENT: numbers.e.to_bytes(3, "big"),
            })
            self._objects[fingerprint] = obj
            while len(self._objects) > CACHE_SIZE:
                _, old = self._objects.popitem(last=False)
                old.destroy()
        else:
            self._objects.move_to_end(fingerprint)
        return obj

    def verify_rsa_sha256(self, key: rsa.RSAPublicKey, data: bytes, signature: bytes) -> bool:
        """True only if ``signature`` is a valid sha256WithRSAEncryption over ``data``."""
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
