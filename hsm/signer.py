"""A ``cryptography`` private-key object whose ``sign`` runs inside the token.

``cryptography`` builds and encodes the X.509 structures (we never hand-write ASN.1);
it calls ``sign`` on this object, which asks the token for the signature. The key
itself never leaves the token.
"""

from __future__ import annotations

from typing import Any

import pkcs11
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pkcs11 import Attribute, Mechanism, ObjectClass

from cardlib.remote_key import RemoteRsaPrivateKey

from .errors import HsmError
from .keys import role_key
from .roles import KeyRole, label_for
from .token import Hsm

MAX_PADDED_PAYLOAD = 256 - 11  # RSA-2048: PKCS#1 v1.5 needs 11 bytes of padding


class TokenRsaSigner(RemoteRsaPrivateKey):
    """sha256WithRSAEncryption by the token key of ``role`` version ``version``."""

    def __init__(self, hsm: Hsm, role: KeyRole, version: int) -> None:
        self._hsm = hsm
        self._role = role
        self._version = version
        super().__init__(self._load_public_key())

    @property
    def role(self) -> KeyRole:
        return self._role

    @property
    def version(self) -> int:
        return self._version

    @property
    def label(self) -> str:
        return label_for(self._role, self._version)

    def __repr__(self) -> str:
        return f"TokenRsaSigner({label_for(self._role, self._version)!r})"

    def _load_public_key(self) -> rsa.RSAPublicKey:
        label = label_for(self._role, self._version)

        def read(session: pkcs11.Session) -> tuple[bytes, bytes]:
            key = session.get_key(object_class=ObjectClass.PUBLIC_KEY, label=label)
            return key[Attribute.MODULUS], key[Attribute.PUBLIC_EXPONENT]

        modulus, exponent = self._hsm.call(read)
        return rsa.RSAPublicNumbers(int.from_bytes(exponent, "big"),
                                    int.from_bytes(modulus, "big")).public_key()

    def sign(self, data: bytes, padding_: Any, algorithm: Any) -> bytes:  # type: ignore[override]
        if not isinstance(padding_, padding.PKCS1v15) or not isinstance(algorithm, hashes.SHA256):
            raise HsmError("token signer supports only PKCS#1 v1.5 with SHA-256")

        def sign(session: pkcs11.Session) -> bytes:
            key = role_key(session, self._role, self._version)
            return bytes(key.sign(data, mechanism=Mechanism.SHA256_RSA_PKCS))

        return self._hsm.call(sign)

    def sign_padded(self, payload: bytes) -> bytes:
        """CKM_RSA_PKCS over ``payload`` as given: the token adds PKCS#1 v1.5 type-1
        padding to whatever DigestInfo-like bytes it is handed (the surface AP's
        three-digest face payload; at most 245 bytes for RSA-2048)."""
        if not 1 <= len(payload) <= MAX_PADDED_PAYLOAD:
            raise HsmError(f"a PKCS#1 v1.5 payload is 1-{MAX_PADDED_PAYLOAD} bytes")

        def sign(session: pkcs11.Session) -> bytes:
            key = role_key(session, self._role, self._version)
            return bytes(key.sign(payload, mechanism=Mechanism.RSA_PKCS))

        return self._hsm.call(sign)
