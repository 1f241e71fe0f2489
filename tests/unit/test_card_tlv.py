"""The card's TLV length form and filler rule (RC §2.2)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardlib.card_tlv import card_length, card_tlv, check_filler, children_in_order, object_and_filler
from cardlib.errors import CardDataError


def test_length_forms() -> None:
    assert card_length(0x65) == b"\x65"
    assert card_length(0x80) == b"\x82\x00\x80"  # RC §2.2: FF 40 82 00 9F inferred
    assert card_length(0x14B) == b"\x82\x01\x4b"
    assert card_tlv(0xDF31, b"\x00" * 32)[:3] == b"\xdf\x31\x20"
    with pytest.raises(ValueError):
        card_length(0x10000)


def test_object_and_filler() -> None:
    item, header = object_and_filler(b"\xff\x10\x01a\xff\xff\x00", 0xFF10, "x")
    assert (item.value, header) == (b"a", 3)
    _, header = object_and_filler(b"\xff\x10\x81\x01a", 0xFF10, "x")  # 81 xx accepted
    assert header == 4
    with pytest.raises(CardDataError, match="x: byte 01 after the object at \\+1"):
        object_and_filler(b"\xff\x10\x01a\xff\x01", 0xFF10, "x")
    with pytest.raises(CardDataError, match="expected tag FF10"):
        object_and_filler(b"\xff\x11\x01a", 0xFF10, "x")


def test_children_in_order() -> None:
    fields = ((0xDF31, "DF31"), (0xDF32, "DF32"))
    found = children_in_order(b"\xdf\x31\x01a\xdf\x32\x00", fields, "r")
    assert [(i.tag, p) for i, p in found] == [(0xDF31, 0), (0xDF32, 4)]
    with pytest.raises(CardDataError, match="DF32 missing"):
        children_in_order(b"\xdf\x31\x01a", fields, "r")
    with pytest.raises(CardDataError, match=r"DF31 missing .found tag DF32"):
        children_in_order(b"\xdf\x32\x00\xdf\x31\x01a", fields, "r")
    with pytest.raises(CardDataError, match="1 bytes after the last object"):
        children_in_order(b"\xdf\x31\x01a\xdf\x32\x00\x00", fields, "r")


@given(st.binary(max_size=64))
def test_random(raw: bytes) -> None:
    with contextlib.suppress(CardDataError):
        object_and_filler(raw, 0xFF20, "x")
    with contextlib.suppress(CardDataError):
        children_in_order(raw, ((0xDF21, "DF21"), (0xDF22, "DF22")), "x")
    with contextlib.suppress(CardDataError):
        check_filler(raw, "x")


@given(st.binary(max_size=700), st.binary(max_size=30).map(lambda b: bytes(0xFF for _ in b)))
def test_round_trip(value: bytes, filler: bytes) -> None:
    item, _ = object_and_filler(card_tlv(0xFF30, value) + filler, 0xFF30, "x")
    assert item.value == value
