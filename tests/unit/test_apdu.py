import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardlib.apdu import CommandApdu, split_response
from cardlib.errors import CardDataError


@pytest.mark.parametrize(
    ("data_len", "ne", "expected_head"),
    [
        (0, None, "00a40400"),
        (0, 1, "00a4040001"),
        (0, 256, "00a4040000"),  # short Le 00 = 256
        (0, 257, "00a40400000101"),  # extended Le
        (0, 65536, "00a40400000000"),  # extended Le 0000 = 65536
        (1, None, "00a4040001"),
        (0x7F, None, "00a404007f"),
        (0x80, None, "00a4040080"),
        (0xFF, None, "00a40400ff"),  # largest short Lc
        (0x100, None, "00a4040000" + "0100"),  # extended Lc
        (0xFFFF, None, "00a4040000" + "ffff"),
    ],
)
def test_encoding_boundaries(data_len: int, ne: int | None, expected_head: str) -> None:
    apdu = CommandApdu(0x00, 0xA4, 0x04, 0x00, bytes(data_len), ne)
    encoded = apdu.encode()
    assert encoded.hex().startswith(expected_head)
    assert len(encoded) == len(bytes.fromhex(expected_head)) + data_len + (
        (2 if apdu.is_extended else 1) if ne is not None and data_len else 0
    )
    assert CommandApdu.decode(encoded) == apdu


def test_case4_extended_when_only_ne_is_large() -> None:
    encoded = CommandApdu(0x00, 0x2A, 0x9E, 0x9A, b"\x01\x02", 300).encode()
    assert encoded.hex() == "002a9e9a" + "00" + "0002" + "0102" + "012c"


@given(
    st.integers(0, 255), st.integers(0, 255), st.integers(0, 255), st.integers(0, 255),
    st.binary(max_size=600), st.one_of(st.none(), st.integers(1, 65536)),
)
def test_round_trip(cla: int, ins: int, p1: int, p2: int, data: bytes, ne: int | None) -> None:
    apdu = CommandApdu(cla, ins, p1, p2, data, ne)
    assert CommandApdu.decode(apdu.encode()) == apdu


@given(st.binary(max_size=300))
def test_decode_garbage_raises_only_card_data_error(raw: bytes) -> None:
    with contextlib.suppress(CardDataError):
        CommandApdu.decode(raw)


@pytest.mark.parametrize(
    "raw", ["", "00", "00a404", "00a4040002aa", "00a40400000002aa", "00a404000000020a"]
)
def test_decode_rejects_malformed(raw: str) -> None:
    with pytest.raises(CardDataError):
        CommandApdu.decode(bytes.fromhex(raw))


def test_constructor_rejects_out_of_range() -> None:
    with pytest.raises(ValueError, match="Ne"):
        CommandApdu(0, 0xB0, 0, 0, ne=65537)
    with pytest.raises(ValueError, match="p1"):
        CommandApdu(0, 0xB0, 256, 0)
    with pytest.raises(ValueError, match="too long"):
        CommandApdu(0, 0xD6, 0, 0, bytes(65536))


def test_split_response() -> None:
    assert split_response(bytes.fromhex("01029000")) == (b"\x01\x02", 0x9000)
    with pytest.raises(CardDataError, match="status word"):
        split_response(b"\x90")


@pytest.mark.parametrize(("raw", "extended", "ne"), [
    ("0084000008", False, 8), ("0084000000", False, 256), ("00840000000008", True, 8),
    ("00840000000000", True, 65536), ("00A4040C02AAAA", False, None),
    ("00A4040C000002AAAA", True, None), ("00CA00F8000002AAAA0000", True, 65536),
])
def test_decode_records_the_extended_form(raw: str, extended: bool, ne: int | None) -> None:
    """The card must tell `00 84 00 00 00 00 08` from `00 84 00 00 08` (RC §2.1: GET
    CHALLENGE refuses an extended Le); the flag does not change equality, and a command
    built with it is sent in the extended form even when a short one would do."""
    apdu = CommandApdu.decode(bytes.fromhex(raw))
    assert (apdu.extended, apdu.ne) == (extended, ne)
    assert apdu.encode() == bytes.fromhex(raw)
    assert CommandApdu(0x00, 0xCA, 0x00, 0xF8, ne=65536, extended=True).encode() == \
        bytes.fromhex("00CA00F8000000")
    assert CommandApdu(0, 0x84, 0, 0, ne=8, extended=True) == CommandApdu(0, 0x84, 0, 0, ne=8)
