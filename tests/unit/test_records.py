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
    assert raw[2] == len(raw) - 3
    # DF21 with four 2-byte offsets from byte 0 of the FILE (RC §4.3), then DF22..DF25
    assert raw[3:6] == b"\xdf\x21\x08"
    offsets = [int.from_bytes(raw[6 + 2 * i: 8 + 2 * i], "big") for i in range(4)]
    assert offsets[0] == 14
    assert raw[offsets[0]:offsets[0] + 3] == b"\xdf\x22" + bytes((len(name),))
    assert raw[offsets[1]:offsets[1] + 4] == b"\xdf\x23\x01X"
    assert raw[offsets[2]:offsets[2] + 11] == b"\xdf\x24\x0820000102"
    assert raw[offsets[3]:] == b"\xdf\x25\x012"


SAMPLE_B = bytes.fromhex(  # RC §11.1 B, 104 bytes as read trimmed
    "ff2065df2108000e002000590064df220fe9bb92e6a190e38080e5b9b9e4b99f"
    "df2336e69db1e4baace983bde6b885e780ace5b882e8a6b3e5b883e5ad90e58d"
    "97efbc91efbc92efbc8defbc97efbc8defbc92efbc90efbc92df240831393830"
    "30323137df250131")
SAMPLE_B_INFO = FourInfo("黒桐\u3000幹也", "東京都清瀬市観布子南１２－７－２０２",
                         dt.date(1980, 2, 17), "1")
SAMPLE_A_TRIMMED = bytes.fromhex("FF100C353337363836363737313838")
SAMPLE_C = bytes.fromhex("011C" + "34303030303030313237313938343331333232313230333530323137")


def test_sample_b_decodes_and_encodes_byte_for_byte() -> None:
    assert len(SAMPLE_B) == 104
    assert decode_four_info(SAMPLE_B) == SAMPLE_B_INFO
    assert decode_four_info(SAMPLE_B + b"\xff" * 152) == SAMPLE_B_INFO  # physical, filler
    assert encode_four_info(SAMPLE_B_INFO) == SAMPLE_B


def test_sample_b_with_a_moved_offset_is_rejected() -> None:
    raw = bytearray(SAMPLE_B)
    raw[7] = 0x0F  # first offset 0E -> 0F (myna-card's test)
    with pytest.raises(CardDataError, match="DF21 offset 1 is 15, but name DF22 starts at 14"):
        decode_four_info(bytes(raw))
    raw = bytearray(SAMPLE_B)
    raw[13] = 0x63  # last offset 64 -> 63
    with pytest.raises(CardDataError, match="DF21 offset 4"):
        decode_four_info(bytes(raw))


def test_offsets_counted_from_the_value_are_rejected() -> None:
    """Our first layout counted from the FF20 value: such a file is not the real card's."""
    raw = bytearray(SAMPLE_B)
    for i in range(4):
        offset = int.from_bytes(raw[6 + 2 * i:8 + 2 * i], "big") - 3
        raw[6 + 2 * i:8 + 2 * i] = offset.to_bytes(2, "big")
    with pytest.raises(CardDataError, match="DF21"):
        decode_four_info(bytes(raw))


def test_four_info_rejects_hidden_data_after_the_object() -> None:
    with pytest.raises(CardDataError, match="not filler"):
        decode_four_info(SAMPLE_B + b"\xff\xdf\x22\x01X")


def test_long_four_info_uses_82_and_offsets_follow() -> None:
    info = FourInfo("山" * 60, "川" * 120, dt.date(2001, 2, 3), "9")
    raw = encode_four_info(info)
    assert raw[:3] == b"\xff\x20\x82" and int.from_bytes(raw[3:5], "big") == len(raw) - 5
    assert int.from_bytes(raw[8:10], "big") == 16  # 5-byte header + DF21 (11)
    assert decode_four_info(raw + b"\xff" * 7) == info


def test_sample_a_trimmed_and_physical() -> None:
    physical = SAMPLE_A_TRIMMED + b"\xff\xff"
    assert decode_individual_number(SAMPLE_A_TRIMMED) == "537686677188"
    assert decode_individual_number(physical) == "537686677188"
    assert encode_individual_number("537686677188") == physical


def test_sample_c_common_record() -> None:
    record = decode_card_info_record(SAMPLE_C)
    assert record.card_serial == "400000012719843"
    assert record.municipality_code[:5] == "13221"
    assert record.municipality_code == "13221" + str(municipality_check_digit("13221"))
    assert record.expiry == dt.date(2035, 2, 17)
    assert encode_card_info_record(record) == SAMPLE_C
    assert decode_card_info_record(SAMPLE_C + b"\xff" * 4) == record  # record filler
    long_form = b"\x01\xff\x00\x1c" + SAMPLE_C[2:]  # simple TLV three-byte length
    assert decode_card_info_record(long_form) == record


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


@given(st.binary(max_size=40))
def test_individual_number_fuzz(raw: bytes) -> None:
    with contextlib.suppress(CardDataError):
        decode_individual_number(raw)


@given(names, names, st.dates(dt.date(1870, 1, 1), dt.date(2100, 12, 31)),
       st.sampled_from(["0", "1", "2", "9"]), st.integers(0, 300))
def test_four_info_round_trip_physical(name: str, address: str, birth: dt.date, sex: str,
                                       filler: int) -> None:
    info = FourInfo(name, address, birth, sex)
    assert decode_four_info(encode_four_info(info) + b"\xff" * filler) == info
