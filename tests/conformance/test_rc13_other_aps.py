"""RC §13 rows about the 券面事項確認AP, JPKI AP, 共通AP and 住基AP (rows 1, 8-12, 19, 20)."""

from __future__ import annotations

import hashlib
import secrets

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from .conftest import CARD_INFO_PIN, JPKI_AUTH_PIN, JPKI_SIGN_PIN, SAMPLE_NUMBER, IssuedResident
from .raw_reader import (
    RawCard,
    der_object,
    expect,
    inner,
    only,
    parse_cv_certificate,
    read_physical,
    rsa_key,
    select_aid,
    select_ef,
    verify,
)
from .rc import (
    CARD_INFO,
    COMMON,
    JPKI,
    JUKI,
    SURFACE,
    digest_info,
    presence_sign,
    read_sw,
    recover_block,
    sha256_rsa_ok,
    sw_of,
    type1_payload,
    verify_sw,
)


def test_row01_surface_ap_keys_records_and_signatures(card: RawCard, resident: IssuedResident) -> None:
    """RC §5: 0003/0004 free; A opens 0002 and 0005; the birth-date key opens 0001 only;
    the records verify under the EF 0004 key (DF28 over the three digests); 80 2A 00 00
    with no credential; SET SESSION KEY -> 66F1."""
    select_aid(card, SURFACE)
    certificate = parse_cv_certificate(read_physical(card, 0x0004))
    basic = read_physical(card, 0x0003)
    assert [f.tag for f in inner(basic, 0xFF30)] == [0xDF31, 0xDF32, 0xDF33, 0xDF34, 0xDF35]
    assert only(inner(basic, 0xFF30), 0xDF34).value(basic) == b"13221"
    assert (read_sw(card, 0x0001), read_sw(card, 0x0002), read_sw(card, 0x0005)) == \
        (0x6982, 0x6982, 0x6982)
    assert card.transmit(bytes.fromhex("80AE0000000100") + b"\x01" * 256)[1] == 0x66F1
    challenge = secrets.token_bytes(16)
    signature = presence_sign(card, challenge)
    assert verify_sw(card, 0x0011, "550217") == 0x9000  # 和暦 YYMMDD (昭和55)
    age = read_physical(card, 0x0001)
    assert age[:5] == bytes.fromhex("FF1082021E")
    fields = inner(age, 0xFF10)
    df11, df12, df13 = (only(fields, t) for t in (0xDF11, 0xDF12, 0xDF13))
    assert df11.value(age) == b"19800217"
    assert sha256_rsa_ok(certificate.key, df13.value(age), df11.raw(age) + df12.raw(age))
    assert sha256_rsa_ok(rsa_key(df12.value(age)), signature, challenge)
    assert read_sw(card, 0x0002) == 0x6982  # the birth-date key opens 0001 only
    assert verify_sw(card, 0x0013, SAMPLE_NUMBER) == 0x9000
    face = read_physical(card, 0x0002)
    objects = inner(face, 0xFF20)
    assert [o.tag for o in objects] == list(range(0xDF21, 0xDF2B))
    table = objects[0].value(face)
    assert [int.from_bytes(table[i:i + 2], "big") for i in range(0, 18, 2)] == \
        [o.start for o in objects[1:]]
    raw = {o.tag: o.raw(face) for o in objects}
    payload = (bytes.fromhex("3071300D06096086480165030402010500") + b"\x04\x60"
               + hashlib.sha256(raw[0xDF22] + raw[0xDF23] + raw[0xDF24]).digest()
               + hashlib.sha256(raw[0xDF25] + raw[0xDF26]).digest()
               + hashlib.sha256(raw[0xDF27]).digest())
    assert type1_payload(recover_block(certificate.key, objects[7].value(face))) == payload
    assert objects[6].value(face)[4:8] == b"jP  "  # the photo is JPEG 2000 in JP2
    assert objects[4].value(face)[:8] == bytes.fromhex("89504E470D0A1A0A")
    number = read_physical(card, 0x0005)
    parts = inner(number, 0xFF40)
    assert sha256_rsa_ok(certificate.key, parts[2].value(number),
                         parts[0].raw(number) + parts[1].raw(number))


def test_row01_surface_collation_b_reaches_the_face_not_the_number(
        card: RawCard, resident: IssuedResident) -> None:
    """RC §5.1: 照合番号B (0012) opens 0002 0003 0004 0006 but not 0005 nor 0001; the
    birth-date key 0011 alone opens 0001 (和暦 YYMMDD)."""
    assert resident.collation_b is not None, "issuance returns no security code (part I)"
    select_aid(card, SURFACE)
    assert verify_sw(card, 0x0012, resident.collation_b) == 0x9000
    assert (read_sw(card, 0x0002), read_sw(card, 0x0005), read_sw(card, 0x0001)) == \
        (0x9000, 0x6982, 0x6982)
    select_aid(card, JPKI)
    select_aid(card, SURFACE)
    assert read_sw(card, 0x0002) == 0x6982  # leaving the AP cleared B
    assert verify_sw(card, 0x0011, "19800217") != 0x9000  # Gregorian is not the key


def test_row08_internal_authenticate_00_88_00_99(card: RawCard) -> None:
    """RC §8: key 0019 by SFI, no credential, deterministic sha256WithRSA over the
    challenge; our 7F21 certifies it (docs/resident-card.md). The 券面 signing keys: 6985."""
    select_aid(card, COMMON)
    challenge = b"hello"
    first = expect(card, b"\x00\x88\x00\x99\x05" + challenge + b"\x00")
    assert len(first) == 256
    assert expect(card, b"\x00\x88\x00\x99\x05" + challenge + b"\x00") == first
    long_challenge = secrets.token_bytes(255)
    assert len(expect(card, b"\x00\x88\x00\x99\xff" + long_challenge + b"\x00")) == 256
    card.reconnect(unpower=True)  # GET DATA answers with no AP selected (RC §3)
    data, sw = card.transmit("00 CA 7F 21 00 00 00")
    assert sw == 0x9000
    key = parse_cv_certificate(data).key
    assert sha256_rsa_ok(key, first, challenge)
    select_aid(card, CARD_INFO)
    assert sw_of(card, "00 88 00 93 04 01020304 00") == 0x6985
    select_aid(card, SURFACE)
    assert sw_of(card, "00 88 00 9A 04 01020304 00") == 0x6985


def _change_key(card: RawCard, aid: bytes, old: str, new: str) -> None:
    select_aid(card, aid)
    verify(card, 0x001C, old)
    expect(card, b"\x80\x32\x00\x80\x04" + new.encode())


def test_row09_common_and_juki_pins_change_with_change_key_separately(card: RawCard) -> None:
    """RC §8-9: 001C of each AP is set to the card-info PIN at issuance (ours), changed
    with 80 32 00 80 after VERIFY, and the two are separate key references."""
    _change_key(card, COMMON, CARD_INFO_PIN, "9753")
    card.reconnect(unpower=True)
    select_aid(card, COMMON)
    assert verify_sw(card, 0x001C, CARD_INFO_PIN) == 0x63C2
    assert verify_sw(card, 0x001C, "9753") == 0x9000
    select_aid(card, JUKI)
    assert verify_sw(card, 0x001C, CARD_INFO_PIN) == 0x9000  # the 住基AP's own PIN is unchanged
    _change_key(card, COMMON, "9753", CARD_INFO_PIN)
    select_aid(card, CARD_INFO)
    verify(card, 0x0011, CARD_INFO_PIN)
    expect(card, b"\x00\x24\x01\x80\x04" + CARD_INFO_PIN.encode())  # CHANGE REFERENCE DATA


def _auth_key(card: RawCard):  # type: ignore[no-untyped-def]
    select_aid(card, JPKI)
    return x509.load_der_x509_certificate(der_object(read_physical(card, 0x000A))).public_key()


def test_row10_compute_digital_signature_p1_00_to_05(card: RawCard) -> None:
    """RC §7.5: P1 00-05 and P2 by SFI (97 = 0017) byte-identical to SELECT + 80."""
    key = _auth_key(card)
    verify(card, 0x0018, JPKI_AUTH_PIN)
    message = b"conformance " + secrets.token_bytes(8)
    digest = hashlib.sha256(message).digest()
    no_null = bytes.fromhex("302F300B0609608648016503040201") + b"\x04\x20" + digest

    def sign(p1: int, data: bytes, p2: int = 0x97) -> tuple[bytes, int]:
        return card.transmit(bytes([0x80, 0x2A, p1, p2, len(data)]) + data + b"\x00")

    p00, sw = sign(0x00, no_null)  # the public client's DigestInfo without NULL: padded as is
    assert sw == 0x9000 and type1_payload(recover_block(key, p00)) == no_null
    assert type1_payload(recover_block(key, sign(0x01, message)[0])) == digest
    for p1, data in ((0x02, digest), (0x03, message)):
        signature, sw = sign(p1, data)
        assert sw == 0x9000
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    for p1, data in ((0x04, digest), (0x05, message)):
        signature, sw = sign(p1, data)
        assert sw == 0x9000
        key.verify(signature, message, padding.PSS(padding.MGF1(hashes.SHA256()),
                                                   padding.PSS.AUTO), hashes.SHA256())
    assert sign(0x06, digest)[1] == 0x6A86
    assert sign(0x02, digest[:31])[1] in (0x6985, 0x6700)
    by_sfi = sign(0x03, message)[0]
    select_ef(card, 0x0017)
    assert sign(0x03, message, p2=0x80)[0] == by_sfi
    assert sign(0x00, digest_info(b"x"), p2=0x9A)[1] == 0x6982  # sign key: its PIN not given


def test_row11_token_info_is_a_160_byte_ck_token_info(card: RawCard) -> None:
    """RC §7.3: free, 160 bytes, space-padded label JPKIAPICCTOKEN2, big-endian
    CK_ULONGs, ASCII hardware/firmware versions 03/01."""
    select_aid(card, JPKI)
    info = read_physical(card, 0x0006)
    assert len(info) == 160
    assert info[:32] == b"JPKIAPICCTOKEN2".ljust(32, b" ")
    flags = int.from_bytes(info[96:100], "big")
    assert flags & 0x1 and flags & 0x4 and flags & 0x400  # RNG, LOGIN_REQUIRED, TOKEN_INITIALIZED
    assert int.from_bytes(info[116:120], "big") >= int.from_bytes(info[120:124], "big") > 0
    assert info[140:144] == b"0301"


def test_row12_jpki_0008_0009_and_pin_gated_sign_certificate(card: RawCard) -> None:
    """RC §7.1: 0008 = 8F 8F 00 with no filler, 0009 protected, 0001 after 001B only."""
    select_aid(card, JPKI)
    select_ef(card, 0x0008)
    assert card.transmit("00 B0 00 00 00") == (b"\x8f\x8f\x00", 0x9000)
    assert read_sw(card, 0x0009) == 0x6982
    assert read_sw(card, 0x0001) == 0x6982
    assert read_sw(card, 0x0002) == 0x9000 and read_sw(card, 0x000B) == 0x9000
    verify(card, 0x001B, JPKI_SIGN_PIN)
    certificate = x509.load_der_x509_certificate(der_object(read_physical(card, 0x0001)))
    assert certificate.signature_hash_algorithm.name == "sha256"  # type: ignore[union-attr]


def test_row19_juki_ap_public_parts(card: RawCard) -> None:
    """RC §9: EF 0002 (16-byte key reference, equal to the 共通AP's), PIN 001C, 80 AE ->
    6982 even with the PIN; our record EF 0003 stays behind SCP03."""
    select_aid(card, COMMON)
    select_ef(card, 0x0002)
    common_reference = expect(card, "00 B2 01 04 00")
    select_aid(card, JUKI)
    select_ef(card, 0x0002)
    reference = expect(card, "00 B2 01 04 00")
    assert reference == common_reference and len(reference) in (16, 18)
    verify(card, 0x001C, CARD_INFO_PIN)
    assert card.transmit(bytes.fromhex("80AE0000000100") + b"\x01" * 256)[1] == 0x6982
    for read in ("00 B2 01 04 00", "00 B0 00 00 00"):  # our record code: SCP03 only
        select_ef_sw = sw_of(card, "00 A4 02 0C 02 00 03")
        data, sw = card.transmit(read)
        assert sw != 0x9000 and data == b"", (select_ef_sw, read, hex(sw))


def test_row20_common_ap_record_read_by_select_and_by_sfi(card: RawCard, resident: IssuedResident) -> None:
    """RC §8: record 1 = 01 1C serial(15) municipality(5) expiry(8), free, by SELECT +
    00 B2 01 04 or by SFI 00 B2 01 0C; EF 0002 a 16-byte key reference."""
    select_aid(card, COMMON)
    by_sfi = expect(card, "00 B2 01 0C 00")
    select_ef(card, 0x0001)
    assert expect(card, "00 B2 01 04 00") == by_sfi
    assert by_sfi[:2] == b"\x01\x1c" and len(by_sfi) == 30
    text = by_sfi[2:].decode("ascii")
    assert text[15:20] == "13221" and text[20:] == resident.expiry.strftime("%Y%m%d")
    assert text[:15].isdigit()
    assert sw_of(card, "00 B2 01 05 00") in (0x6A81, 0x9000)
