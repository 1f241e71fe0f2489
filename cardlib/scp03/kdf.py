"""NIST SP 800-108 KDF in counter mode with a CMAC PRF, as SCP03 uses it.

The PRF is passed in as a function so the same code derives session keys with a key
held in software (card side, known-answer tests) or inside a PKCS#11 token
(``CKM_AES_CMAC`` on a derived card key): the static key never has to be here.
"""

from __future__ import annotations

from collections.abc import Callable

from ..constants import AES_BLOCK

Prf = Callable[[bytes], bytes]  # data -> 16-byte AES-CMAC under some static key



def counter_kdf(prf: Prf, before: bytes, after: bytes, length: int) -> bytes:
    """``length`` bytes of PRF(before ‖ i ‖ after) for i = 1, 2, … (8-bit counter)."""
    if not 1 <= length <= 255 * AES_BLOCK:
        raise ValueError("KDF output length out of range")
    blocks = (length + AES_BLOCK - 1) // AES_BLOCK
    return b"".join(prf(before + bytes((i,)) + after) for i in range(1, blocks + 1))[:length]


def scp03_derive(prf: Prf, constant: int, context: bytes, bits: int) -> bytes:
    """SCP03 derivation: label = 11 zero bytes ‖ constant, separator 00, L (2 bytes,
    bits), counter, context."""
    before = bytes(11) + bytes((constant,)) + b"\x00" + bits.to_bytes(2, "big")
    return counter_kdf(prf, before, context, bits // 8)
