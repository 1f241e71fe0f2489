"""RC §13 rows about card-wide behaviour (rows 13, 15-18, 21, 22), on raw APDUs."""

from __future__ import annotations

import hashlib

import pytest

from .conftest import CARD_INFO_PIN, JPKI_SIGN_PIN, IssuedResident
from .raw_reader import (
    RawCard,
    check_cv_certificate,
    expect,
    parse_cv_certificate,
    read_physical,
    select_aid,
    select_ef,
    verify,
)
from .rc import CARD_INFO, COMMON, ISD, JPKI, SURFACE, empty_verify, read_sw, sw_of, verify_sw


def test_row13_files_carry_filler_fixed_binaries_and_simple_tlv_records(card: RawCard) -> None:
    """RC §2.2: BER long form 82 hh ll for every length >= 256; filler after the object;
    JPKI 0006/0008 fixed binary; 共通AP EFs are records in JICSAP simple TLV."""
    select_aid(card, CARD_INFO)
    assert read_physical(card, 0x0004)[:5] == bytes.fromhex("7F21820233")
    verify(card, 0x0011, CARD_INFO_PIN)
    number = read_physical(card, 0x0001)
    assert len(number) == 17 and number.endswith(b"\xff\xff")
    assert read_physical(card, 0x0003)[:5] == bytes.fromhex("FF3082014B")
    assert read_physical(card, 0x0007)[:5] == bytes.fromhex("FF50820213")
    select_aid(card, JPKI)
    assert len(read_physical(card, 0x0008)) == 3
    select_aid(card, COMMON)
    record = expect(card, "00 B2 01 0C 00")
    assert record[0] == 0x01 and record[1] == len(record) - 2


def test_row15_empty_verify_answers(card: RawCard) -> None:
    """RC §2.1: 63Cx tries left; the attempt that exhausts the counter answers 63C0; every
    attempt after 6984; the empty VERIFY of a blocked key 63C0; never 6983. The JPKI sign
    password (5 tries) is spent here; this module's card is not used for signing after."""
    assert empty_verify(card, CARD_INFO, 0x0012) == 0x63C0
    assert empty_verify(card, JPKI, 0x001B) == 0x63C5
    answers = [verify_sw(card, 0x001B, "WRONG1") for _ in range(5)]
    assert answers == [0x63C4, 0x63C3, 0x63C2, 0x63C1, 0x63C0]
    assert verify_sw(card, 0x001B, JPKI_SIGN_PIN) == 0x6984
    assert empty_verify(card, JPKI, 0x001B) == 0x63C0


STATUS_SITUATIONS = {
    0x66F1: ("surface 80 AE", SURFACE, "80AE0000000100" + "01" * 256),
    0x6700: ("80 FC 00 00", CARD_INFO, "80FC0000"),
    0x6881: ("logical channel 1", None, "01A4040C0AD3921000310001010408"),
    0x6882: ("SELECT with CLA 08, no session", CARD_INFO, "08A4020C020001"),
    0x6985: ("GET CHALLENGE, extended Le", CARD_INFO, "0084000000 0010"),
    0x69FC: ("READ BINARY CLA 08 in JPKI", JPKI, "08B0000000"),
    0x6A82: ("SELECT 3F00", None, "00A4020C023F00"),
    0x6A86: ("80 A2 00 00", JPKI, "80A2000001 00"),
    0x6A88: ("GET DATA absent object", None, "00CA012300"),
}


@pytest.mark.parametrize("sw", sorted(STATUS_SITUATIONS), ids=lambda sw: f"{sw:04X}")
def test_row16_status_words_beyond_card_profiles(card: RawCard, sw: int) -> None:
    """RC §10, §13.16: the status words card-profiles.md does not list, each in its
    situation (the SM ones, 6987/6988/6A80/6F00, in row 07; 6981 in row 17)."""
    _what, aid, apdu = STATUS_SITUATIONS[sw]
    if aid is not None:
        select_aid(card, aid)
    assert sw_of(card, apdu) == sw


def test_row17_mf_level(card: RawCard, resident: IssuedResident) -> None:
    """RC §3: no readable EF, 00 A4 00 00 -> 6A86 after a cold reset (9000 and no change
    inside an AP); GET DATA only with no AP selected (or the ISD); 00F8 needs extended Le."""
    assert sw_of(card, "00 A4 00 00") == 0x6A86
    for fid in ("3F00", "2F10", "2F11"):
        assert sw_of(card, f"00 A4 02 0C 02 {fid}") == 0x6A82
    for sfi in range(1, 0x1F):  # a sweep of every SFI after a cold reset finds nothing
        assert card.transmit(bytes([0x00, 0xB0, 0x80 | sfi, 0x00, 0x00]))[1] != 0x9000, sfi
    select_ef(card, 0x001E)
    assert sw_of(card, "00 B0 00 00 01") == 0x6981 and sw_of(card, "00 B2 01 04 00") == 0x6981
    assert expect(card, "00 CA 00 F0 00") == b"13221"
    assert expect(card, "00 CA 00 F2 00") == resident.expiry.strftime("%Y%m%d").encode()
    assert expect(card, "00 CA 5F 51 00") == bytes.fromhex("E000FF8131FE4514")
    assert sw_of(card, "00 CA 00 F8 00") == 0x6700
    root = expect(card, "00 CA 00 F8 00 00 00")
    assert root[:5] == bytes.fromhex("5F4E820129")
    intermediate = expect(card, "00 CA 7F 21 00 00 00")
    assert parse_cv_certificate(intermediate).issuer_id == parse_cv_certificate(root).holder_id
    assert expect(card, "00 CA 00 F7 00") == parse_cv_certificate(intermediate).issuer_id
    select_aid(card, CARD_INFO)
    assert sw_of(card, "00 CA 00 F0 00") == 0x6A88
    assert sw_of(card, "00 A4 00 00") == 0x9000
    assert read_sw(card, 0x0004) == 0x9000  # still in the card-info AP
    select_aid(card, ISD)
    assert expect(card, "00 CA 00 F0 00") == b"13221"


def test_row17_card_identification_number_is_ascii(card: RawCard, resident: IssuedResident) -> None:
    """RC §3: GET DATA 0045 is the card identification number in ASCII (myna-card's
    read_card trims non-printable bytes around it, nothing inside)."""
    answer = expect(card, "00 CA 00 45 00")
    trimmed = bytes(answer).strip(bytes(b for b in range(256) if not 0x20 < b < 0x7F))
    assert trimmed.isdigit() and resident.serial.encode() in trimmed, answer.hex(" ")


def test_row18_cv_certificates_chain_to_our_token_keys(card: RawCard, station) -> None:  # type: ignore[no-untyped-def]
    """RC §6: 7F21 { 5F4E 297-byte body (two 16-byte key IDs + the 265-byte key), 5F37 },
    PKCS#1 v1.5/SHA-256 over the body; our IDs are 7xxxxxx (docs/resident-card.md)."""
    from .conftest import token_anchor

    for aid, role in ((CARD_INFO, "cv-card-info-ca"), (SURFACE, "cv-surface-ca")):
        select_aid(card, aid)
        certificate = parse_cv_certificate(read_physical(card, 0x0004))
        anchor_id, modulus = token_anchor(station, role)
        from .raw_reader import key_from_modulus

        check_cv_certificate(certificate, key_from_modulus(modulus), anchor_id)
        for key_id in (certificate.issuer_id, certificate.holder_id):
            assert key_id[:1] == b"7" and key_id[:7].isdigit() and key_id[7:9] == b"\x08\x05"
            assert key_id[9:12].isdigit() and key_id[12:15] == bytes(3)
    card.reconnect(unpower=True)
    root = parse_cv_certificate(expect(card, "00 CA 00 F8 00 00 00"))
    intermediate = parse_cv_certificate(expect(card, "00 CA 7F 21 00 00 00"))
    root_id, root_modulus = token_anchor(station, "cv-root")
    from .raw_reader import key_from_modulus

    check_cv_certificate(root, key_from_modulus(root_modulus), root_id)
    check_cv_certificate(intermediate, root.key, root.holder_id)


RC_CA_KEYS = {  # RC §6.1: key ID (number, last byte) -> SHA-256 of the modulus (copy check)
    ("5000020", 0xA8): "318ab4a79346bbd993d36d31a4d766f02a239f36b10bc323458242130f927a97",
    ("5000023", 0x00): "bb96cc1dc6502005661961f0a45ed843d007c69e3ce167eceb6b1abd5333a932",
    ("5000033", 0x00): "409655d477547d83cbe182385acb1ea83c9828eb6e5b8bba90957c339b5f30f7",
    ("6000020", 0xA8): "218018727ce0d4955b0b40f468eb131d5e8375ee4a2aa58dabda524b19d29a39",
    ("6000023", 0x00): "df70444dbe6841ec03267c25cf1bd35ff30ef8044da34ff5eedd0719e6f14530",
    ("6000033", 0x00): "690db1b2d7b9994764a81982bc1e4cd76d9e92d0a33a895b2e71a0be8356f1ae",
}


def test_row18_the_six_published_ca_keys_in_cardlib() -> None:
    """RC §6.1: cardlib's anchors are the six published keys, full 16-byte IDs."""
    from cardlib.trust_anchors import published_anchor_keys

    anchors = published_anchor_keys()
    expected = {number.encode() + b"\x08\x05001\x00\x00\x00" + bytes([last]): digest
                for (number, last), digest in RC_CA_KEYS.items()}
    assert set(anchors) == set(expected)
    for key_id, key in anchors.items():
        numbers = key.public_numbers()
        assert numbers.e == 65537 and key.key_size == 2048
        assert hashlib.sha256(numbers.n.to_bytes(256, "big")).hexdigest() == expected[key_id]


def test_row18_host_parser_agrees_with_the_independent_reader(card: RawCard) -> None:
    """cardlib's CV decoder and raw_reader.py read the card's three certificates alike."""
    from cardlib.cv_certificate import decode_cv_certificate

    raws = []
    for aid in (CARD_INFO, SURFACE):
        select_aid(card, aid)
        raws.append(read_physical(card, 0x0004))
    card.reconnect(unpower=True)
    raws += [expect(card, "00 CA 00 F8 00 00 00"), expect(card, "00 CA 7F 21 00 00 00")]
    for raw in raws:
        ours, theirs = decode_cv_certificate(raw), parse_cv_certificate(raw)
        assert (ours.issuer.raw, ours.holder.raw, ours.body, ours.signature) == \
            (theirs.issuer_id, theirs.holder_id, theirs.body, theirs.signature)
        assert ours.public_key.public_numbers() == theirs.key.public_numbers()


def test_row21_security_status_lifetime(card: RawCard) -> None:
    """RC §2.1: a verified PIN survives a warm reset (SCARD_RESET_CARD) and re-selecting
    the same AP; selecting another AP or a power-off clears it."""
    select_aid(card, CARD_INFO)
    verify(card, 0x0011, CARD_INFO_PIN)
    assert read_sw(card, 0x0001) == 0x9000
    card.reconnect(unpower=False)
    select_aid(card, CARD_INFO)
    assert read_sw(card, 0x0001) == 0x9000
    select_aid(card, CARD_INFO)
    assert read_sw(card, 0x0001) == 0x9000
    select_aid(card, JPKI)
    select_aid(card, CARD_INFO)
    assert read_sw(card, 0x0001) == 0x6982
    verify(card, 0x0011, CARD_INFO_PIN)
    card.reconnect(unpower=True)
    select_aid(card, CARD_INFO)
    assert read_sw(card, 0x0001) == 0x6982


@pytest.mark.parametrize("length", [1, 8, 16, 100, 255, 256])
def test_row22_get_challenge_honours_every_length(card: RawCard, length: int) -> None:
    """RC §2.1: GET CHALLENGE 1-256 bytes, each length exactly (Le 00 = 256), at MF level
    and in an AP."""
    le = length % 256
    at_mf = expect(card, bytes([0x00, 0x84, 0x00, 0x00, le]))
    select_aid(card, JPKI)
    in_ap = expect(card, bytes([0x00, 0x84, 0x00, 0x00, le]))
    assert len(at_mf) == len(in_ap) == length
    assert at_mf != in_ap or length == 1


def test_row22_channel_0_only_and_extended_length(card: RawCard) -> None:
    """RC §2.1: any other channel -> 6881; extended Le reads a whole 568-byte EF."""
    for cla in (0x01, 0x02, 0x03):
        assert sw_of(card, bytes([cla, 0xA4, 0x04, 0x0C, 0x0A]) + CARD_INFO) == 0x6881
    select_aid(card, CARD_INFO)
    select_ef(card, 0x0004)
    whole = expect(card, "00 B0 00 00 00 02 38")
    assert len(whole) == 568 and hashlib.sha256(whole).digest() == \
        hashlib.sha256(read_physical(card, 0x0004)).digest()
