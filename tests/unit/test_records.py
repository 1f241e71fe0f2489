import contextlib
import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardlib.checkdigits import municipality_check_digit
from cardlib.errors import CardDataError
from cardlib.records import (
    CardInfoRecord,
    FourInfo,
    decode_card_info_record,
    decode_four_info,
    decode_individual_number,
    encode_card_info_record,
    encode_four_info,
    encode_individual_number,
)
from tests.helpers import SAMPLE_INFO


def test_four_info_exact_public_layout() -> None:
    raw = encode_four_info(FourInfo("A\u3000B", "X", dt.date(2000, 1, 2), "2"))
    name = "A\u3000B".encode()
    assert raw[:2] == b"\xff\x20"
    body = raw[3:]
    assert raw[2] == len(body)
    # DF21 with four 2-byte offsets, then DF22 name, DF23 address, DF24 date, DF25 sex
    assert body[:3] == b"\xdf\x21\x08"
    offsets = [int.from_bytes(body[3 + 2 * i: 5 + 2 * i], "big") for i in range(4)]
    assert body[offsets[0]:offsets[0] + 3] == b"\xdf\x22" + bytes((len(name),))
    assert body[offsets[1]:offsets[1] + 4] == b"\xdf\x23\x01X"
    assert body[offsets[2]:offsets[2] + 11] == b"\xdf\x24\x0820000102"
    assert body[offsets[3]:] == b"\xdf\x25\x012"


names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)


@given(names, names, st.dates(dt.date(1870, 1, 1), dt.date(2100, 12, 31)),
       st.sampled_from(["0", "1", "2", "9"]))
def test_four_info_round_trip(name: str, address: str, birth: dt.date, sex: str) -> None:
    info = FourInfo(name, address, birth, sex)
    assert decode_four_info(encode_four_info(info)) == info


@given(st.binary(max_size=120))
def test_four_info_fuzz_raises_only_card_data_error(raw: bytes) -> None:
    with contextlib.suppress(CardDataError):
        decode_four_info(raw)


@given(st.integers(0, 200), st.integers(0, 255))
def test_four_info_single_byte_corruption_is_caught_or_harmless(position: int, value: int) -> None:
    raw = bytearray(encode_four_info(SAMPLE_INFO))
    position %= len(raw)
    raw[position] = value
    try:
        decoded = decode_four_info(bytes(raw))
    except CardDataError:
        return
    assert isinstance(decoded, FourInfo)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda raw: b"\xff\x21" + raw[2:], "expected tag FF20"),
        (lambda raw: raw.replace(b"\xdf\x25\x011", b"\xdf\x25\x017"), "unknown code"),
        (lambda raw: raw.replace(b"19850412", b"19850231"), "not a calendar date"),
        (lambda raw: raw.replace(b"19850412", b"1985041x"), "YYYYMMDD"),
        (lambda raw: raw.replace(b"\xdf\x21\x08", b"\xdf\x2f\x08"), "offsets DF21 missing"),
        (lambda raw: raw[:-4], "runs past"),
    ],
)
def test_four_info_errors_name_the_field(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CardDataError, match=message):
        decode_four_info(mutate(encode_four_info(SAMPLE_INFO)))


def test_four_info_rejects_overlong_name_in_bytes() -> None:
    with pytest.raises(ValueError, match="bytes in UTF-8"):
        encode_four_info(FourInfo("山" * 61, "x", dt.date(2000, 1, 1), "1"))  # 183 bytes


def test_individual_number_file() -> None:
    raw = encode_individual_number("123456789018")
    assert raw == b"\xff\x10\x0c123456789018\xff\xff"
    assert decode_individual_number(raw) == "123456789018"
    with pytest.raises(CardDataError, match="check digit"):
        decode_individual_number(b"\xff\x10\x0c123456789019\xff\xff")
    with pytest.raises(ValueError):
        encode_individual_number("123456789019")


def test_card_info_record() -> None:
    record = CardInfoRecord("012345678901234", "131016", dt.date(2035, 3, 31))
    raw = encode_card_info_record(record)
    assert raw == b"\x01\x1c" + b"012345678901234" + b"13101" + b"20350331"
    assert decode_card_info_record(raw) == record
    with pytest.raises(CardDataError, match="28 bytes"):
        decode_card_info_record(b"\x01\x1b" + raw[2:-1])
    with pytest.raises(CardDataError, match="expiry"):
        decode_card_info_record(raw[:-4] + b"1332")


@given(st.text("0123456789", min_size=15, max_size=15), st.text("0123456789", min_size=5, max_size=5),
       st.dates(dt.date(2000, 1, 1), dt.date(2099, 12, 31)))
def test_card_info_record_round_trip(serial: str, code5: str, expiry: dt.date) -> None:
    record = CardInfoRecord(serial, code5 + str(municipality_check_digit(code5)), expiry)
    assert decode_card_info_record(encode_card_info_record(record)) == record


@given(st.binary(max_size=40))
def test_card_info_record_fuzz(raw: bytes) -> None:
    with contextlib.suppress(CardDataError):
        decode_card_info_record(raw)
