"""RC §11: every published sample (A-G) and every derived value (§11.2). Samples that
are host-parser facts go to cardlib's parsers; samples that are APDUs go to the card.
The module's card is issued for the samples' person, so its EF 0001/0002, DF31/DF32
and SM exchanges can be compared with the published bytes themselves."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
from functools import reduce

import pytest

from . import raw_sm
from .conftest import CARD_INFO_PIN, JPKI_AUTH_PIN, SAMPLE_NUMBER, IssuedResident
from .raw_reader import RawCard, expect, inner, only, read_physical, read_tlv, rsa_key, select_aid, verify
from .rc import CARD_INFO, COMMON, ISD, JPKI, REAL_ATR, read_sw, sw_of

SAMPLE_A_TRIMMED = bytes.fromhex("FF100C353337363836363737313838")
SAMPLE_A_PHYSICAL = SAMPLE_A_TRIMMED + b"\xff\xff"
SAMPLE_B = bytes.fromhex(
    "ff2065df2108000e002000590064df22" "0fe9bb92e6a190e38080e5b9b9e4b99f"
    "df2336e69db1e4baace983bde6b885e7" "80ace5b882e8a6b3e5b883e5ad90e58d"
    "97efbc91efbc92efbc8defbc97efbc8d" "efbc92efbc90efbc92df240831393830"
    "30323137df250131")
SAMPLE_C = bytes.fromhex("011C" + "343030303030303132373139383433" + "3133323231"
                         + "3230333530323137")
SAMPLE_F = (b"JPKIAPICCTOKEN2".ljust(32) + b"0" * 31 + b"1" + b"E16R01NJ".ljust(16)
            + b"0000000020500003" + bytes.fromhex(
                "0000040D 00000001 00000000 00000001 00000000 00000010 00000006".replace(" ", ""))
            + b"\xff" * 16 + b"0301" + b"9" * 16)
DIGEST_A_PHYSICAL = "6d5a4c1ef9ab15bf506862d7e66b9c0f179ca065bc936c8e634e9e57449ca9cd"
DIGEST_A_TRIMMED = "7ebdbfd7326ee2c5add5415bab1dcde0c2178febea75ffec24fe77415d42f1cf"
DIGEST_B_DF22_DF25 = "b9e0d09427b23b1d4beda2848512b4103752dc2667e51f9712872d65f472cb3b"
DIGEST_B_ALL = "86931a4249692104df2aa6d70c0383d9b683f46a94d6316d2a965507b8446007"
SEED = bytes(range(32))
SM_VERIFY_A = "08 20 00 94 13 86 11 01 4C 38 D5 E5 87 01 1F E5 5F 9A A0 73 44 77 95 C2"
SM_SELECT_0001 = "08 A4 02 0C 13 86 11 01 46 D4 CA AC 31 3B 21 DA 35 E3 FE 7C 43 5C 31 50"


def host(module: str):  # type: ignore[no-untyped-def]
    return importlib.import_module(f"cardlib.{module}")


def test_sample_a_individual_number_host_parser() -> None:
    records = host("records")
    assert records.decode_individual_number(SAMPLE_A_PHYSICAL) == "537686677188"
    assert records.decode_individual_number(SAMPLE_A_TRIMMED) == "537686677188"
    assert records.encode_individual_number("537686677188") == SAMPLE_A_PHYSICAL
    assert host("checkdigits").is_valid_individual_number("537686677188")


def test_sample_a_on_the_card_byte_for_byte(card: RawCard) -> None:
    select_aid(card, CARD_INFO)
    verify(card, 0x0011, CARD_INFO_PIN)
    assert read_physical(card, 0x0001) == SAMPLE_A_PHYSICAL


def test_sample_b_four_information_host_parser() -> None:
    info = host("records").decode_four_info(SAMPLE_B)
    assert (info.name, info.address, info.birth_date, info.sex) == (
        "黒桐　幹也", "東京都清瀬市観布子南１２－７－２０２", dt.date(1980, 2, 17), "1")
    assert host("records").encode_four_info(info) == SAMPLE_B
    broken = bytearray(SAMPLE_B)
    broken[7] = 0x0F  # first offset 0E -> 0F: the parser must reject the file
    with pytest.raises(host("errors").CardDataError):
        host("records").decode_four_info(bytes(broken))


def test_sample_b_on_the_card_byte_for_byte(card: RawCard) -> None:
    select_aid(card, CARD_INFO)
    verify(card, 0x0011, CARD_INFO_PIN)
    content = read_physical(card, 0x0002)
    assert content[:len(SAMPLE_B)] == SAMPLE_B
    assert set(content[len(SAMPLE_B):]) <= {0xFF}


def test_sample_c_common_record_host_parser() -> None:
    record = host("records").decode_card_info_record(SAMPLE_C)
    assert record.card_serial == "400000012719843"
    assert record.municipality_code[:5] == "13221"
    assert record.expiry == dt.date(2035, 2, 17)
    assert host("simple_tlv").parse_simple_tlvs(SAMPLE_C)[0].tag == 0x01


def test_sample_d_collation_b() -> None:
    collation = host("collation")
    assert collation.wareki_yymmdd(dt.date(1980, 2, 17)) == "550217"
    assert collation.collation_b(dt.date(1980, 2, 17), 2035, "2285") == "55021720352285"
    for day, expected in ((dt.date(1989, 1, 7), "640107"), (dt.date(1989, 1, 8), "010108"),
                          (dt.date(2019, 4, 30), "310430"), (dt.date(2019, 5, 1), "010501")):
        assert collation.wareki_yymmdd(day) == expected


def test_sample_e_contact_atr(card: RawCard) -> None:
    assert reduce(lambda a, b: a ^ b, REAL_ATR[1:]) == 0  # TCK: XOR of T0..TCK is 0
    assert card.atr() == REAL_ATR
    assert expect(card, "00 CA 5F 51 00") == REAL_ATR[1:]
    from cardlib.constants import REAL_CONTACT_ATR

    assert REAL_CONTACT_ATR == REAL_ATR


def test_sample_f_token_info_host_parser() -> None:
    assert len(SAMPLE_F) == 160
    info = host("jpki_token_info").decode_token_info(SAMPLE_F)
    assert info.label == "JPKIAPICCTOKEN2"
    assert info.model == "E16R01NJ" and info.serial_number == "0000000020500003"
    assert info.flags == 0x040D
    assert (info.max_pin_len, info.min_pin_len) == (16, 6)
    assert (info.max_session_count, info.session_count) == (1, 0)
    assert info.manufacturer_id == "0" * 31 + "1" and info.utc_time == "9" * 16
    assert (info.hardware_version, info.firmware_version) == ("03", "01")
    assert host("jpki_token_info").encode_token_info(info) == SAMPLE_F


def test_sample_g_apdus_on_the_card(card: RawCard, resident: IssuedResident) -> None:
    """Every APDU of RC §11.1 G, with the answers RC gives (PINs are this card's)."""
    expect(card, "00 A4 04 0C 0A D3 92 F0 00 26 01 00 00 00 01")
    expect(card, "00 A4 04 0C 07 A0 00 00 01 51 00 00")
    assert sw_of(card, "00 CA 00 F8 00") == 0x6700
    assert expect(card, "00 CA 00 F8 00 00 00")[:2] == b"\x5f\x4e"
    assert len(expect(card, "00 84 00 00 00")) == 256
    assert len(expect(card, "00 84 00 00 08")) == 8
    expect(card, "00 A4 04 0C 0A D3 92 F0 00 26 01 00 00 00 01")
    assert sw_of(card, "00 20 00 98") == 0x63C3  # JPKI auth PIN by SFI: 3 tries
    expect(card, b"\x00\x20\x00\x98\x04" + JPKI_AUTH_PIN.encode())
    assert len(expect(card, "80 2A 00 97 02 01 02 00")) == 256
    assert sw_of(card, "00 B0 8A 00 00") == 0x9000  # EF 000A by SFI: the auth certificate
    select_aid(card, CARD_INFO)
    expect(card, "00 A4 02 0C 02 00 11")
    assert sw_of(card, "00 20 00 80") == 0x63C3
    expect(card, b"\x00\x20\x00\x80\x04" + CARD_INFO_PIN.encode())
    expect(card, b"\x00\x24\x01\x80\x04" + CARD_INFO_PIN.encode())
    select_aid(card, COMMON)
    assert expect(card, "00 B2 01 0C 00")[:2] == b"\x01\x1c"
    expect(card, "00 A4 02 0C 02 00 01")
    assert expect(card, "00 B2 01 04 00")[:2] == b"\x01\x1c"
    assert sw_of(card, "00 B2 01 05 00") in (0x6A81, 0x9000)
    assert len(expect(card, "00 88 00 99 05 68 65 6C 6C 6F 00")) == 256
    expect(card, "00 A4 02 0C 02 00 1C")
    expect(card, b"\x00\x20\x00\x80\x04" + CARD_INFO_PIN.encode())
    expect(card, b"\x80\x32\x00\x80\x04" + CARD_INFO_PIN.encode())
    select_aid(card, ISD)


def test_derived_digests_of_samples_a_and_b() -> None:
    """RC §11.2, computed from the samples and by cardlib.integrity."""
    assert hashlib.sha256(SAMPLE_A_PHYSICAL).hexdigest() == DIGEST_A_PHYSICAL
    assert hashlib.sha256(SAMPLE_A_TRIMMED).hexdigest() == DIGEST_A_TRIMMED
    assert hashlib.sha256(SAMPLE_B[14:104]).hexdigest() == DIGEST_B_DF22_DF25
    assert hashlib.sha256(SAMPLE_B).hexdigest() == DIGEST_B_ALL
    integrity = host("integrity")
    assert integrity.number_digest(SAMPLE_A_PHYSICAL).hex() == DIGEST_A_PHYSICAL
    assert integrity.attributes_digest(SAMPLE_B).hex() == DIGEST_B_DF22_DF25
    assert integrity.attributes_digest(SAMPLE_B + b"\xff" * 40).hex() == DIGEST_B_DF22_DF25


def test_derived_digests_are_the_cards_df31_df32(card: RawCard) -> None:
    select_aid(card, CARD_INFO)
    verify(card, 0x0011, CARD_INFO_PIN)
    record = read_physical(card, 0x0003)
    fields = inner(record, 0xFF30)
    assert only(fields, 0xDF31).value(record).hex() == DIGEST_A_PHYSICAL
    assert only(fields, 0xDF32).value(record).hex() == DIGEST_B_DF22_DF25


def test_sm_vectors_host_side() -> None:
    """RC §11.2 with K = 00..0F: the IVs and the two protected APDUs, by this tier's own
    SM code and by cardlib.text_sm."""
    key = SEED[:16]
    text_sm = host("text_sm")
    for iv in (raw_sm.iv, text_sm.iv_of):
        assert iv(key, 1).hex() == "7346139595c0b41e497bbde365f42d0a"
        assert iv(key, 2).hex() == "49d68753999ba68ce3897a686081b09d"
    assert raw_sm.sm_verify(key, 1, 0x14, SAMPLE_NUMBER.encode()) == bytes.fromhex(SM_VERIFY_A)
    assert raw_sm.sm_select_ef(key, 2, 0x0001) == bytes.fromhex(SM_SELECT_0001)
    assert text_sm.encrypt_object(key, 1, SAMPLE_NUMBER.encode()) == bytes.fromhex(SM_VERIFY_A)[5:]
    assert text_sm.encrypt_object(key, 2, b"\x00\x01") == bytes.fromhex(SM_SELECT_0001)[5:]


def test_sm_vectors_sent_to_the_card(card: RawCard) -> None:
    """The card, given the seed 00..1F, accepts the published N=1 and N=2 APDUs byte for
    byte (its 照合番号A is the sample's number) and answers the read under N=3."""
    select_aid(card, CARD_INFO)
    verify(card, 0x0011, CARD_INFO_PIN)
    content = read_physical(card, 0x0006)
    expect(card, raw_sm.set_session_key_apdu(rsa_key(read_tlv(content, 0).value(content)), SEED))
    expect(card, SM_VERIFY_A)
    expect(card, SM_SELECT_0001)
    answer = expect(card, raw_sm.sm_read_binary())
    assert raw_sm.open_response(SEED[:16], 3, answer) == SAMPLE_A_PHYSICAL
    select_aid(card, JPKI)


def test_sample_h_what_rc_asserts_of_the_fixtures_holds_on_our_card(card: RawCard) -> None:
    """RC §11.1 H: the test card's binary fixtures are not published; what the sources
    assert about them is checked on our card (with our 7xxxxxx key IDs, RC §6)."""
    from .raw_reader import check_cv_certificate, parse_cv_certificate
    from .rc import SURFACE, sha256_rsa_ok

    select_aid(card, SURFACE)
    surface_cert = parse_cv_certificate(read_physical(card, 0x0004))
    assert surface_cert.issuer_id[:7] == b"7000023" and len(surface_cert.body) == 297
    assert surface_cert.key.public_numbers().e == 65537 and len(surface_cert.signature) == 256
    basic = read_physical(card, 0x0003)
    fields = {f.tag: f.value(basic) for f in inner(basic, 0xFF30)}
    assert fields[0xDF34] == b"13221" and len(fields[0xDF32]) == 16
    assert len(fields[0xDF35]) == 16 + 256
    card.reconnect(unpower=True)
    root = parse_cv_certificate(expect(card, "00 CA 00 F8 00 00 00"))
    assert root.issuer_id[:7] == b"7000020"
    check_cv_certificate(parse_cv_certificate(expect(card, "00 CA 7F 21 00 00 00")), root.key,
                         root.holder_id)
    select_aid(card, CARD_INFO)
    text_basic = read_physical(card, 0x0005)
    values = [f.value(text_basic) for f in inner(text_basic, 0xFF40)]
    assert len(values[0]) == 4 and len(values[1]) == 16 and len(values[2]) == 128
    text_cert = parse_cv_certificate(read_physical(card, 0x0004))
    verify(card, 0x0011, CARD_INFO_PIN)
    record = read_physical(card, 0x0003)
    df = {f.tag: f for f in inner(record, 0xFF30)}
    assert sha256_rsa_ok(text_cert.key, df[0xDF33].value(record),
                         df[0xDF31].raw(record) + df[0xDF32].raw(record))


def test_samples_c_d_f_host_parsers_read_our_card(card: RawCard, resident: IssuedResident) -> None:
    """The parsers that accept samples C, D and F also read our card's 共通AP record,
    open its 0015 with the 照合番号B cardlib computes, and decode its EF 0006."""
    select_aid(card, COMMON)
    record = host("records").decode_card_info_record(expect(card, "00 B2 01 0C 00"))
    assert (record.card_serial, record.expiry) == (resident.serial, resident.expiry)
    assert record.municipality_code[:5] == "13221"
    select_aid(card, JPKI)
    info = host("jpki_token_info").decode_token_info(read_physical(card, 0x0006))
    assert info.label == "JPKIAPICCTOKEN2"
    assert resident.security_code is not None
    secret = host("collation").collation_b(dt.date(1980, 2, 17), resident.expiry.year,
                                           resident.security_code)
    select_aid(card, CARD_INFO)
    verify(card, 0x0015, secret)
    assert read_sw(card, 0x0002) == 0x9000 and read_sw(card, 0x0001) == 0x6982
