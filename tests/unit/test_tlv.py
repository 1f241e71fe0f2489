import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardlib import tlv
from cardlib.errors import CardDataError


@pytest.mark.parametrize(
    ("length", "encoded"),
    [(0, "00"), (0x7F, "7f"), (0x80, "8180"), (0xFF, "81ff"), (0x100, "820100"),
     (0xFFFF, "82ffff"), (0x10000, "83010000")],
)
def test_length_boundaries(length: int, encoded: str) -> None:
    assert tlv.encode_length(length).hex() == encoded
    item = tlv.Tlv(0x04, bytes(length))
    assert tlv.parse_all(item.encode()) == [item]


@pytest.mark.parametrize(("tag", "encoded"), [(0x5A, "5a"), (0xDF21, "df21"), (0x7F49, "7f49"),
                                              (0x5FC102, "5fc102"), (0xFF20, "ff20")])
def test_multibyte_tags(tag: int, encoded: str) -> None:
    assert tlv.encode_tag(tag).hex() == encoded
    parsed, end = tlv.parse_one(tlv.Tlv(tag, b"\x01").encode())
    assert parsed.tag == tag and end == len(encoded) // 2 + 2


@pytest.mark.parametrize("bad", [0x1F, 0x5F, 0xDF81, 0x5A01, 0x5F818201, 0x5F81828304])
def test_bad_tags_rejected(bad: int) -> None:
    with pytest.raises(ValueError):
        tlv.encode_tag(bad)


def test_nested_build_and_children() -> None:
    outer = tlv.Tlv.build(0x7C, tlv.Tlv(0x82, b""), tlv.Tlv(0x81, b"\xaa" * 3))
    assert outer.encode().hex() == "7c07" + "8200" + "8103aaaaaa"
    assert outer.constructed
    assert [c.tag for c in outer.children()] == [0x82, 0x81]


@pytest.mark.parametrize(
    ("raw", "message"),
    [("df", "multi-byte tag"), ("5a", "length expected"), ("5a05aa", "runs past"),
     ("5a80", "indefinite"), ("5a84000000", "octets"), ("5a82ff", "long-form"),
     ("df8181818101", "tag DF8181818101 at offset 0 is longer than 3 bytes")],
)
def test_malformed_inputs_name_the_problem(raw: str, message: str) -> None:
    with pytest.raises(CardDataError, match=message):
        tlv.parse_all(bytes.fromhex(raw))


def test_header_length() -> None:
    assert tlv.header_length(bytes.fromhex("ff2082012c")) == 5 + 0x12C
    assert tlv.header_length(bytes.fromhex("011c3030")) == 30


tags = st.sampled_from([0x01, 0x5A, 0x84, 0xDF21, 0xDF25, 0x7F49, 0x5FC102, 0xFF20])


@given(st.lists(st.tuples(tags, st.binary(max_size=300)), max_size=5))
def test_round_trip(items: list[tuple[int, bytes]]) -> None:
    objects = [tlv.Tlv(t, v) for t, v in items]
    assert tlv.parse_all(b"".join(o.encode() for o in objects)) == objects


@given(st.binary(max_size=64))
def test_fuzz_parse_raises_only_card_data_error(raw: bytes) -> None:
    with contextlib.suppress(CardDataError):
        tlv.parse_all(raw)


# ---- issue 11 §11: "TLV accepts 5-byte tags" ----------------------------------------------

@pytest.mark.parametrize(("raw", "named"), [
    ("5f8182830401aa", "5F81828304"),  # the 5-byte tag of the issue, with a 1-byte value
    ("7f81820100", "7F818201"),  # 4 bytes
    ("9000" + "df8080808001" + "00", "DF8080808001"),  # after a good object, offset named
])
def test_tags_longer_than_three_bytes_are_refused_by_name(raw: str, named: str) -> None:
    with pytest.raises(CardDataError, match=f"TLV tag {named} at offset \\d+ is longer than 3"):
        tlv.parse_all(bytes.fromhex(raw))
    with pytest.raises(CardDataError, match=named):  # also when sizing a file to read
        tlv.header_length(bytes.fromhex(raw.removeprefix("9000")))


def test_three_byte_tags_still_parse() -> None:
    assert tlv.parse_all(bytes.fromhex("5fc10201aa")) == [tlv.Tlv(0x5FC102, b"\xaa")]
    assert tlv.parse_all(bytes.fromhex("df817f00")) == [tlv.Tlv(0xDF817F, b"")]


long_tags = st.builds(
    lambda first, middle, last: bytes([first | 0x1F]) + bytes(b | 0x80 for b in middle)
    + bytes([last & 0x7F]),
    st.integers(0, 0xFF), st.binary(min_size=2, max_size=6), st.integers(0, 0xFF))


@given(st.lists(st.tuples(tags, st.binary(max_size=20)), max_size=3), long_tags,
       st.binary(max_size=20))
def test_a_long_tag_anywhere_is_refused_naming_it(good: list[tuple[int, bytes]], tag: bytes,
                                                  tail: bytes) -> None:
    before = b"".join(tlv.Tlv(t, v).encode() for t, v in good)
    with pytest.raises(CardDataError, match=f"TLV tag {tag.hex().upper()} at offset "
                                            f"{len(before)} is longer than 3 bytes"):
        tlv.parse_all(before + tag + tail)
