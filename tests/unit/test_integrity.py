"""The card-info integrity record EF 0003 (RC §4.4) and its digests (RC §11.2)."""

from __future__ import annotations

import contextlib
import functools

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import given
from hypothesis import strategies as st

from cardlib.errors import CardDataError
from cardlib.integrity import (
    IntegrityRecord,
    attributes_digest,
    decode_integrity_record,
    encode_integrity_record,
    number_digest,
    signed_part,
)
from tests.unit.test_records import SAMPLE_A_TRIMMED, SAMPLE_B

SAMPLE_A_PHYSICAL = SAMPLE_A_TRIMMED + b"\xff\xff"
DF31_A = bytes.fromhex("6d5a4c1ef9ab15bf506862d7e66b9c0f179ca065bc936c8e634e9e57449ca9cd")
TRIMMED_A = bytes.fromhex("7ebdbfd7326ee2c5add5415bab1dcde0c2178febea75ffec24fe77415d42f1cf")
DF32_B = bytes.fromhex("b9e0d09427b23b1d4beda2848512b4103752dc2667e51f9712872d65f472cb3b")
WHOLE_B = bytes.fromhex("86931a4249692104df2aa6d70c0383d9b683f46a94d6316d2a965507b8446007")


@functools.cache
def signer() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


def signed_record() -> bytes:
    part = signed_part(DF31_A, DF32_B)
    signature = signer().sign(part, padding.PKCS1v15(), hashes.SHA256())
    return encode_integrity_record(DF31_A, DF32_B, signature)


def test_rc_11_2_digests() -> None:
    assert number_digest(SAMPLE_A_PHYSICAL) == DF31_A
    assert number_digest(SAMPLE_A_TRIMMED) == TRIMMED_A != DF31_A  # trimmed must NOT match
    assert attributes_digest(SAMPLE_B) == DF32_B
    assert attributes_digest(SAMPLE_B + b"\xff" * 152) == DF32_B  # physical read
    import hashlib
    assert hashlib.sha256(SAMPLE_B).digest() == WHOLE_B != DF32_B  # whole file must NOT match
    assert hashlib.sha256(SAMPLE_B[3:]).digest() != DF32_B  # nor the value with DF21


def test_offset_table_does_not_change_df32() -> None:
    raw = bytearray(SAMPLE_B)
    raw[7] = 0x0F
    assert attributes_digest(bytes(raw)) == DF32_B  # RC §4.4: DF21 is outside DF32


def test_record_layout() -> None:
    raw = signed_record()
    assert len(raw) == 336
    assert raw[:5] == bytes.fromhex("FF 30 82 01 4B")
    assert raw[5:8] == b"\xdf\x31\x20" and raw[8:40] == DF31_A
    assert raw[40:43] == b"\xdf\x32\x20" and raw[43:75] == DF32_B
    assert raw[75:80] == bytes.fromhex("DF 33 82 01 00")
    record = decode_integrity_record(raw + b"\xff" * 64)
    assert record.signed_part() == raw[5:75] and len(record.signed_part()) == 70
    assert record.verifies_under(signer().public_key())
    assert not record.verifies_under(rsa.generate_private_key(65537, 2048).public_key())


def test_mismatches_real_rule() -> None:
    record = decode_integrity_record(signed_record())
    assert record.mismatches(SAMPLE_A_PHYSICAL, SAMPLE_B) == []
    assert record.mismatches(SAMPLE_A_PHYSICAL, None) == []
    assert record.mismatches(None, SAMPLE_B + b"\xff" * 9) == []
    assert record.mismatches(SAMPLE_A_TRIMMED, SAMPLE_B) == ["individual number (EF 0001, DF31)"]
    tampered = SAMPLE_B.replace(b"1980", b"1981")
    assert record.mismatches(SAMPLE_A_PHYSICAL, tampered) == ["4 information (EF 0002, DF32)"]
    other_number = SAMPLE_A_PHYSICAL.replace(b"5376", b"5377")
    assert len(record.mismatches(other_number, tampered)) == 2


def test_a_resigned_record_by_another_key_does_not_verify() -> None:
    attacker = rsa.generate_private_key(65537, 2048)
    other = signed_part(number_digest(b"\xff\x10\x0c123456789018\xff\xff"), DF32_B)
    forged = encode_integrity_record(DF31_A, DF32_B,
                                     attacker.sign(other, padding.PKCS1v15(), hashes.SHA256()))
    assert not decode_integrity_record(forged).verifies_under(signer().public_key())
    record = decode_integrity_record(signed_record())
    swapped = IntegrityRecord(DF32_B, DF31_A, record.signature)  # digests swapped
    assert not swapped.verifies_under(signer().public_key())


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda raw: raw[:2] + b"\x82\x01\x4c" + raw[5:], "runs past"),
    (lambda raw: raw + b"\x01", "not filler"),
    (lambda raw: b"\xff\x31" + raw[2:], "expected tag FF30"),
    (lambda raw: raw[:5] + b"\xdf\x32" + raw[7:], "DF31 missing"),
    (lambda raw: raw[:2] + b"\x82\x01\x4a" + raw[5:74] + raw[75:], "DF33"),
])
def test_decode_names_the_field(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CardDataError, match=message):
        decode_integrity_record(mutate(signed_record()))


def test_digest_sizes_checked() -> None:
    raw = bytearray(signed_record())
    short = bytes(raw[:2]) + b"\x82\x01\x4a" + b"\xdf\x31\x1f" + bytes(raw[8:39]) + bytes(raw[40:])
    with pytest.raises(CardDataError, match=r"DF31 .SHA-256.: 31 bytes"):
        decode_integrity_record(short)
    with pytest.raises(ValueError, match="DF33 must be 256"):
        encode_integrity_record(DF31_A, DF32_B, b"\x00" * 255)


@given(st.binary(max_size=400))
def test_random_bytes_raise_only_card_data_error(raw: bytes) -> None:
    with contextlib.suppress(CardDataError):
        decode_integrity_record(raw)
    with contextlib.suppress(CardDataError):
        attributes_digest(raw)


@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32),
       st.binary(min_size=256, max_size=256), st.integers(0, 100))
def test_round_trip(d1: bytes, d2: bytes, signature: bytes, filler: int) -> None:
    raw = encode_integrity_record(d1, d2, signature)
    assert decode_integrity_record(raw + b"\xff" * filler) == IntegrityRecord(d1, d2, signature)
