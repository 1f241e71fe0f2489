"""An RSA private key for ``cryptography`` whose private operation happens elsewhere
(a PKCS#11 token, a smart card). ``cryptography`` builds and encodes the X.509 and CMS
structures and calls ``sign``; subclasses send that to where the key lives. Nothing
here can reveal or export the key."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa


class KeyNotHereError(Exception):
    """The operation would need the private key itself, which never leaves its device."""


class RemoteRsaPrivateKey(rsa.RSAPrivateKey):
    def __init__(self, public_key: rsa.RSAPublicKey) -> None:
        self._public = public_key

    def sign(self, data: bytes, padding: Any, algorithm: Any) -> bytes:  # type: ignore[override]
        raise NotImplementedError

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def decrypt(self, ciphertext: bytes, padding: Any) -> bytes:
        raise KeyNotHereError("this key only signs")

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        raise KeyNotHereError("the private key never leaves its device")

    def private_bytes(self, encoding: Any, format: Any, encryption_algorithm: Any) -> bytes:
        raise KeyNotHereError("the private key never leaves its device")

    def __copy__(self) -> RemoteRsaPrivateKey:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> RemoteRsaPrivateKey:
        return self
