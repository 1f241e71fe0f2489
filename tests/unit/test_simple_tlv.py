"""JICSAP simple TLV (RC §2.2): one tag byte, length 1 byte or FF hh ll."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardlib.errors import CardDataError
from cardlib.simple_tlv import SimpleTlv, encode_simple_tlv, parse_simple_tlv, parse_simple_tlvs


def test_length_forms() -> None:
    assert encode_simple_tlv(0x01, b"ab") == b"\x01\x02ab"
    assert encode_simple_tlv(0x01, b"x" * 254)[:2] == b"\x01\xfe"
    assert encode_simple_tlv(0x01, b"x" * 255)[:4] == b"\x01\xff\x00\xff"
    assert encode_simple_tlv(0x02, b"x" * 300)[:4] == b"\x02\xff\x01\x2c"
    assert parse_simple_tlv(b"\x01\xff\x00\x02ab") == (SimpleTlv(1, b"ab"), 6)


def test_record_with_filler() -> None:
    assert parse_simple_tlvs(b"\x01\x01a\x02\x00\xff\xff") == [SimpleTlv(1, b"a"), SimpleTlv(2, b"")]
    with pytest.raises(CardDataError, match="after the filler"):
        parse_simple_tlvs(b"\x01\x01a\xff\x02\x00")


@pytest.mark.parametrize(("raw", "message"), [
    (b"", "tag expected"), (b"\x01", "length expected"), (b"\x01\xff\x00", "three-byte"),
    (b"\x01\x05abc", "runs past"), (b"\x00\x01a", "not a tag"),
])
def test_errors(raw: bytes, message: str) -> None:
    with pytest.raises(CardDataError, match=message):
        parse_simple_tlv(raw)


def test_encode_refuses() -> None:
    for tag in (0x00, 0xFF, 0x100):
        with pytest.raises(ValueError):
            encode_simple_tlv(tag, b"")
    with pytest.raises(ValueError):
        encode_simple_tlv(1, bytes(0x10000))


@given(st.binary(max_size=300))
def test_random_bytes(raw: bytes) -> None:
    with contextlib.suppress(CardDataError):
        parse_simple_tlvs(raw)


@given(st.lists(st.tuples(st.integers(1, 0xFE), st.binary(max_size=600)), max_size=4),
       st.integers(0, 20))
def test_round_trip(items: list[tuple[int, bytes]], filler: int) -> None:
    raw = b"".join(SimpleTlv(t, v).encode() for t, v in items) + b"\xff" * filler
    assert parse_simple_tlvs(raw) == [SimpleTlv(t, v) for t, v in items]
