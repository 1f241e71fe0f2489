"""Names from RC (../shared/reference/real-card.md) for the conformance tests, restated
here on purpose (not imported from cardlib.constants): the tier checks our constants too."""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .raw_reader import RawCard, select_aid, select_ef

JPKI = bytes.fromhex("D392F000260100000001")
CARD_INFO = bytes.fromhex("D3921000310001010408")
SURFACE = bytes.fromhex("D3921000310001010402")
COMMON = bytes.fromhex("D3921000310001010100")
JUKI = bytes.fromhex("D3921000310001010401")
ISD = bytes.fromhex("A0000001510000")
REAL_ATR = bytes.fromhex("3BE000FF8131FE4514")
DIGEST_INFO_SHA256 = bytes.fromhex("3031300D060960864801650304020105000420")


def sw_of(card: RawCard, apdu: bytes | str) -> int:
    return card.transmit(apdu)[1]


def in_ef(card: RawCard, aid: bytes, fid: int) -> None:
    select_aid(card, aid)
    select_ef(card, fid)


def empty_verify(card: RawCard, aid: bytes, key_fid: int) -> int:
    """The retry query (RC §2.1): spends nothing."""
    in_ef(card, aid, key_fid)
    return sw_of(card, "00 20 00 80")


def verify_sw(card: RawCard, key_fid: int, secret: str) -> int:
    select_ef(card, key_fid)
    value = secret.encode("ascii")
    return sw_of(card, bytes([0x00, 0x20, 0x00, 0x80, len(value)]) + value)


def read_sw(card: RawCard, fid: int) -> int:
    select_ef(card, fid)
    return sw_of(card, "00 B0 00 00 01")


def digest_info(message: bytes) -> bytes:
    return DIGEST_INFO_SHA256 + hashlib.sha256(message).digest()


def presence_sign(card: RawCard, message: bytes) -> bytes:
    data, sw = card.transmit(bytes([0x80, 0x2A, 0x00, 0x00, 0x33]) + digest_info(message) + b"\x00")
    assert sw == 0x9000, f"80 2A 00 00 answered {sw:04X}"
    return data


def sha256_rsa_ok(key: rsa.RSAPublicKey, signature: bytes, message: bytes) -> bool:
    try:
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except Exception:
        return False
    return True


def recover_block(key: rsa.RSAPublicKey, signature: bytes) -> bytes:
    """The PKCS#1 block under a signature (raw RSA with the public key), to see what the
    card padded (RC §7.5 was established the same way)."""
    numbers = key.public_numbers()
    value = pow(int.from_bytes(signature, "big"), numbers.e, numbers.n)
    return value.to_bytes(256, "big")


def type1_payload(block: bytes) -> bytes:
    """What a PKCS#1 v1.5 type-1 block carries after 00 01 FF..FF 00."""
    assert block[:2] == b"\x00\x01", block[:4].hex()
    end = block.index(b"\x00", 2)
    assert set(block[2:end]) == {0xFF} and end - 2 >= 8
    return block[end + 1:]
