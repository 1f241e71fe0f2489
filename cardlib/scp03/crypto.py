"""AES primitives for secure messaging, all from ``cryptography``; only the ISO/IEC
7816-4 padding (80 00…), which ``cryptography`` does not offer, is written here."""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from ..constants import AES_BLOCK


def aes_cmac(key: bytes, data: bytes) -> bytes:
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


def aes_ecb_block(key: bytes, block: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return encryptor.update(block) + encryptor.finalize()


def aes_cbc_encrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def aes_cbc_decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return decryptor.update(data) + decryptor.finalize()


def pad(data: bytes) -> bytes:
    """ISO/IEC 7816-4 padding: 80 then zeros to a block boundary (always adds a byte)."""
    padded = data + b"\x80"
    return padded + bytes(-len(padded) % AES_BLOCK)


def unpad(data: bytes) -> bytes | None:
    """Remove 80 00… padding; None if it is malformed (the caller reports one error)."""
    if not data or len(data) % AES_BLOCK:
        return None
    stripped = data.rstrip(b"\x00")
    if not stripped or stripped[-1] != 0x80 or len(data) - len(stripped) >= AES_BLOCK:
        return None
    return stripped[:-1]
