"""Card-info AP EF 0005, 0006, 0007 (RC §4.5, §4.6)."""

from __future__ import annotations

import contextlib
import functools

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import given
from hypothesis import strategies as st

from cardlib.card_info_records import (
    BasicInfo,
    SessionKeyFile,
    SignedKey,
    decode_basic_info,
    decode_session_key_file,
    decode_signed_key,
    encode_basic_info,
    encode_session_key_file,
    encode_signed_key,
)
from cardlib.cv_certificate import KeyId, encode_card_rsa_key
from cardlib.errors import CardDataError

TEST_CARD_BASIC = BasicInfo(bytes.fromhex("01030E01"), KeyId.parse("6000034/001"), bytes(range(32)))


@functools.cache
def key(index: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


def sign_with(private: rsa.RSAPrivateKey):  # type: ignore[no-untyped-def]
    return lambda data: private.sign(data, padding.PKCS1v15(), hashes.SHA256())


def test_basic_info_layout() -> None:
    raw = encode_basic_info(TEST_CARD_BASIC)
    assert raw[:5] == bytes.fromhex("FF 40 82 00 9F") and len(raw) == 5 + 0x9F
    assert raw[5:12] == bytes.fromhex("DF 41 04 01 03 0E 01")
    assert raw[12:15] == bytes.fromhex("DF 42 10") and raw[15:31] == KeyId.parse("6000034/001").raw
    assert raw[31:36] == bytes.fromhex("DF 43 82 00 80")
    assert raw[36:68] == bytes(range(32)) and raw[68:] == b"\xff" * 96
    decoded = decode_basic_info(raw + b"\xff" * (256 - len(raw)))  # physical: at least 256
    assert decoded == TEST_CARD_BASIC and decoded.key_id.text == "6000034/001"
    assert decoded.extended_length


def test_basic_info_accepts_the_81_length_form_and_raw_key_id() -> None:
    raw = encode_basic_info(TEST_CARD_BASIC)
    short = b"\xff\x40\x81\x9e" + raw[5:31] + b"\xdf\x43\x81\x80" + raw[36:]
    assert decode_basic_info(short) == TEST_CARD_BASIC
    assert BasicInfo(b"\x01\x03\x00\x01", KeyId.parse("7000033/001").raw, bytes(32)).key_id == \
        KeyId.parse("7000033/001")


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda raw: raw[:-1] + b"\x00", "96 FF"),
    (lambda raw: raw[:15] + b"X" + raw[16:], "DF42: key ID"),
    (lambda raw: raw[:5] + b"\xdf\x42" + raw[7:], "DF41 missing"),
    (lambda raw: raw + b"\xdf", "not filler"),
])
def test_basic_info_errors(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CardDataError, match=message):
        decode_basic_info(mutate(encode_basic_info(TEST_CARD_BASIC)))


def test_session_key_file() -> None:
    public = key(0).public_key()
    raw = encode_session_key_file(public)
    assert raw[:4] == bytes.fromhex("A1 82 01 09") and raw[4:] == encode_card_rsa_key(public)
    assert SessionKeyFile(public).encode() == raw
    assert decode_session_key_file(raw + b"\xff" * 30).public_numbers() == public.public_numbers()
    with pytest.raises(CardDataError, match=r"EF 0006.*90 03 01 00 01"):
        decode_session_key_file(raw[:4] + b"\x90\x03\x00\x00\x03" + raw[9:])


def test_signed_key_layout_and_signature() -> None:
    card_key = key(1).public_key()
    raw = encode_signed_key(encode_card_rsa_key(card_key), sign_with(key(0)))
    assert len(raw) == 536 and raw[:5] == bytes.fromhex("FF 50 82 02 13")
    assert raw[5:10] == bytes.fromhex("DF 51 82 01 09")
    assert raw[275:280] == bytes.fromhex("DF 52 82 01 00")
    signed = decode_signed_key(raw + b"\xff" * 8)
    assert signed.signed_part() == raw[5:275] and len(signed.signed_part()) == 270
    assert signed.public_key.public_numbers() == card_key.public_numbers()
    assert signed.verifies_under(key(0).public_key())
    assert not signed.verifies_under(key(1).public_key())
    assert encode_signed_key(card_key, sign_with(key(0))) == raw  # PKCS#1 v1.5: deterministic


def test_a_copied_signature_does_not_cover_another_key() -> None:
    """Counterfeit: the genuine DF52 with the attacker's key in DF51."""
    genuine = decode_signed_key(encode_signed_key(key(1).public_key(), sign_with(key(0))))
    swapped = SignedKey(encode_card_rsa_key(key(2).public_key()), genuine.signature)
    assert not decode_signed_key(swapped.encode()).verifies_under(key(0).public_key())


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda raw: raw[:10] + b"\x90\x03\x01\x00\x03" + raw[15:], "DF51"),
    (lambda raw: raw[:5] + b"\xdf\x52" + raw[7:], "DF51 missing"),
    (lambda raw: b"\xff\x50\x82\x02\x12" + raw[5:275] + b"\xdf\x52\x82\x00\xff" + raw[280:-1],
     "DF52: 255 bytes"),
])
def test_signed_key_errors(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    raw = encode_signed_key(key(1).public_key(), sign_with(key(0)))
    with pytest.raises(CardDataError, match=message):
        decode_signed_key(mutate(raw))


@given(st.binary(max_size=600))
def test_random_bytes_raise_only_card_data_error(raw: bytes) -> None:
    for decode in (decode_basic_info, decode_session_key_file, decode_signed_key):
        with contextlib.suppress(CardDataError):
            decode(raw)


@given(st.binary(min_size=4, max_size=4), st.from_regex(r"\A[0-9]{7}\Z"),
       st.binary(min_size=32, max_size=32), st.integers(0, 100))
def test_basic_info_round_trip(version: bytes, number: str, digest: bytes, filler: int) -> None:
    info = BasicInfo(version, KeyId.of(number, "001"), digest)
    assert decode_basic_info(encode_basic_info(info) + b"\xff" * filler) == info


@given(st.binary(min_size=256, max_size=256), st.integers(0, 50))
def test_signed_key_round_trip(signature: bytes, filler: int) -> None:
    signed = SignedKey(encode_card_rsa_key(key(1).public_key()), signature)
    assert decode_signed_key(signed.encode() + b"\x00" * filler) == signed
