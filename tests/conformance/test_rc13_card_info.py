"""RC §13 rows about the 券面事項入力補助AP (rows 2-7, 14), on raw APDUs."""

from __future__ import annotations

import hashlib
import secrets

import pytest

from . import raw_sm
from .conftest import CARD_INFO_PIN, SAMPLE_NUMBER, IssuedResident
from .raw_reader import (
    RawCard,
    expect,
    inner,
    only,
    parse_cv_certificate,
    read_physical,
    read_tlv,
    rsa_key,
    select_aid,
    select_ef,
    verify,
)
from .rc import CARD_INFO, JPKI, empty_verify, presence_sign, read_sw, sha256_rsa_ok, verify_sw


def fresh_ap(card: RawCard) -> None:
    """Leave the AP and come back: its security status is cleared (RC §2.1)."""
    select_aid(card, JPKI)
    select_aid(card, CARD_INFO)


def test_row02_collation_keys_and_access_rules(card: RawCard, resident: IssuedResident) -> None:
    """RC §4.1-4.2: 0012 blocked as issued; A opens 0001 not 0002; B opens 0002 not 0001;
    the PIN opens both; B has 10 tries."""
    assert empty_verify(card, CARD_INFO, 0x0012) == 0x63C0
    assert verify_sw(card, 0x0012, "1234") == 0x6984
    assert empty_verify(card, CARD_INFO, 0x0015) == 0x63CA
    assert empty_verify(card, CARD_INFO, 0x0014) == 0x63CA  # ours: 10 (docs/resident-card.md)
    for fid in (0x0001, 0x0002, 0x0003):
        assert read_sw(card, fid) == 0x6982
    assert verify_sw(card, 0x0014, SAMPLE_NUMBER) == 0x9000
    assert (read_sw(card, 0x0001), read_sw(card, 0x0002), read_sw(card, 0x0003)) == \
        (0x9000, 0x6982, 0x9000)
    fresh_ap(card)
    assert resident.collation_b is not None, "issuance returns no security code (part I)"
    assert verify_sw(card, 0x0015, resident.collation_b) == 0x9000
    assert (read_sw(card, 0x0001), read_sw(card, 0x0002), read_sw(card, 0x0003)) == \
        (0x6982, 0x9000, 0x9000)
    fresh_ap(card)
    assert verify_sw(card, 0x0011, CARD_INFO_PIN) == 0x9000
    assert (read_sw(card, 0x0001), read_sw(card, 0x0002)) == (0x9000, 0x9000)


def test_row03_pin_retry_limit_is_ours_and_counts(card: RawCard) -> None:
    """RC §13.3: the text PIN's limit is unpublished; ours is 3 (docs/resident-card.md).
    A wrong PIN costs a try, the right one restores the counter."""
    assert empty_verify(card, CARD_INFO, 0x0011) == 0x63C3
    assert verify_sw(card, 0x0011, "0000") == 0x63C2
    assert empty_verify(card, CARD_INFO, 0x0011) == 0x63C2
    assert verify_sw(card, 0x0011, CARD_INFO_PIN) == 0x9000
    card.reconnect(unpower=True)
    assert empty_verify(card, CARD_INFO, 0x0011) == 0x63C3


def test_row04_integrity_record_digests_and_signer(card: RawCard) -> None:
    """RC §4.4: DF31 over the physical 0001 (filler included), DF32 over DF22..DF25,
    DF33 over the two TLVs by the key certified in EF 0004 (not the 0007 key)."""
    select_aid(card, CARD_INFO)
    certificate = parse_cv_certificate(read_physical(card, 0x0004))
    verify(card, 0x0011, CARD_INFO_PIN)
    number, attributes = read_physical(card, 0x0001), read_physical(card, 0x0002)
    record = read_physical(card, 0x0003)
    assert number[:15] == b"\xff\x10\x0c" + SAMPLE_NUMBER.encode() and number[15:] == b"\xff\xff"
    assert record[:5] == bytes.fromhex("FF3082014B") and len(record) == 336
    fields = inner(record, 0xFF30)
    df31, df32, df33 = (only(fields, t) for t in (0xDF31, 0xDF32, 0xDF33))
    assert df31.value(record) == hashlib.sha256(number).digest()
    assert df31.value(record) != hashlib.sha256(number[:15]).digest()
    offsets = inner(attributes, 0xFF20)
    start, end = only(offsets, 0xDF22).start, only(offsets, 0xDF25).end
    assert df32.value(record) == hashlib.sha256(attributes[start:end]).digest()
    assert df32.value(record) != hashlib.sha256(attributes[:end]).digest()
    signed = df31.raw(record) + df32.raw(record)
    assert len(signed) == 70 and record[df33.start:df33.value_start] == bytes.fromhex("DF33820100")
    assert sha256_rsa_ok(certificate.key, df33.value(record), signed)
    card_key = rsa_key(only(inner(read_physical(card, 0x0007), 0xFF50), 0xDF51).value(
        read_physical(card, 0x0007)))
    assert not sha256_rsa_ok(card_key, df33.value(record), signed)


def test_row05_basic_data_has_df43_and_is_free(card: RawCard) -> None:
    """RC §4.5: FF40 { DF41 4 bytes (byte 1 = 03), DF42 16-byte key ID, DF43 128 bytes =
    32 + 96 x FF }, readable with nothing presented, physically >= 256 bytes."""
    select_aid(card, CARD_INFO)
    content = read_physical(card, 0x0005)
    assert len(content) >= 256
    fields = inner(content, 0xFF40)
    assert [f.tag for f in fields] == [0xDF41, 0xDF42, 0xDF43]
    df41, df42, df43 = (f.value(content) for f in fields)
    assert len(df41) == 4 and df41[1] == 0x03
    assert len(df42) == 16 and df42[7:9] == b"\x08\x05"
    assert len(df43) == 128 and df43[32:] == b"\xff" * 96 and df43[:32] != b"\xff" * 32


def test_row06_the_other_text_ap_efs(card: RawCard) -> None:
    """RC §4.1, 4.6: 0004 free (568 bytes), 0006 the SET SESSION KEY key (A1), 0007 the
    signed AP key (DF52 under the 0004 key), 0008 sixteen FF, and 80 2A 00 00 with no
    credential signs with the DF51 key."""
    select_aid(card, CARD_INFO)
    certificate_file = read_physical(card, 0x0004)
    assert certificate_file[:5] == bytes.fromhex("7F21820233") and len(certificate_file) == 568
    certificate = parse_cv_certificate(certificate_file)
    assert read_sw(card, 0x0006) == 0x6982 and read_sw(card, 0x0007) == 0x6982
    challenge = secrets.token_bytes(16)
    signature = presence_sign(card, challenge)  # no credential
    verify(card, 0x0011, CARD_INFO_PIN)
    assert read_physical(card, 0x0008)[:16] == b"\xff" * 16  # access not stated by RC
    session_key_file = read_physical(card, 0x0006)
    session_key_object = read_tlv(session_key_file, 0)
    assert session_key_object.tag == 0xA1
    session_key = rsa_key(session_key_object.value(session_key_file))
    signed = read_physical(card, 0x0007)
    assert signed[:5] == bytes.fromhex("FF50820213") and len(signed) >= 536
    fields = inner(signed, 0xFF50)
    df51, df52 = only(fields, 0xDF51), only(fields, 0xDF52)
    assert len(df51.raw(signed)) == 270
    assert sha256_rsa_ok(certificate.key, df52.value(signed), df51.raw(signed))
    ap_key = rsa_key(df51.value(signed))
    assert sha256_rsa_ok(ap_key, signature, challenge)
    moduli = {k.public_numbers().n for k in (ap_key, session_key, certificate.key)}
    assert len(moduli) == 3  # three different keys


def _session_key(card: RawCard, seed: bytes) -> bytes:
    select_ef(card, 0x0006)
    content = read_physical(card, 0x0006)
    key = rsa_key(read_tlv(content, 0).value(content))
    expect(card, raw_sm.set_session_key_apdu(key, seed))
    return seed[:16]


def test_row07_secure_messaging_80AE(card: RawCard) -> None:
    """RC §4.7: PIN in clear first; 80 AE with RSA-OAEP/SHA-256; CLA 08 with DO 86 / 96,
    IV = AES_K(N); the read returns the file with its filler; 0C -> 6987; a wrong counter
    -> 6988 and the session is gone (69FC)."""
    select_aid(card, CARD_INFO)
    garbage = bytes.fromhex("80AE0000000100") + b"\x01" * 256
    assert card.transmit(garbage)[1] == 0x6982  # no PIN yet: access before decryption
    verify(card, 0x0014, SAMPLE_NUMBER)
    assert card.transmit(garbage)[1] == 0x6982  # 照合番号A is not enough
    fresh_ap(card)
    verify(card, 0x0011, CARD_INFO_PIN)
    key = _session_key(card, secrets.token_bytes(32))
    assert card.transmit(raw_sm.sm_verify(key, 1, 0x14, SAMPLE_NUMBER.encode()))[1] == 0x9000
    assert card.transmit(raw_sm.sm_select_ef(key, 2, 0x0001))[1] == 0x9000
    data = expect(card, raw_sm.sm_read_binary())
    assert raw_sm.open_response(key, 3, data) == \
        b"\xff\x10\x0c" + SAMPLE_NUMBER.encode() + b"\xff\xff"
    header_authenticated = bytearray(raw_sm.sm_select_ef(key, 4, 0x0001))
    header_authenticated[0] = 0x0C
    assert card.transmit(bytes(header_authenticated))[1] == 0x6987
    assert card.transmit(raw_sm.sm_select_ef(key, 99, 0x0001))[1] == 0x6988
    assert card.transmit(raw_sm.sm_select_ef(key, 6, 0x0001))[1] == 0x69FC


def test_row07_secure_messaging_rejects_ccs_key_and_bad_cryptogram(card: RawCard) -> None:
    """RC §4.7: the CCS-key form A0 { 81 } -> 6A80; a cryptogram >= the modulus -> 6F00."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    select_aid(card, CARD_INFO)
    verify(card, 0x0011, CARD_INFO_PIN)
    content = read_physical(card, 0x0006)
    key = rsa_key(read_tlv(content, 0).value(content))
    ccs = key.encrypt(bytes.fromhex("A0228120") + secrets.token_bytes(32), padding.OAEP(
        mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
    assert card.transmit(raw_sm.SET_SESSION_KEY_HEADER + ccs)[1] == 0x6A80
    too_big = b"\xff" * 256
    assert card.transmit(raw_sm.SET_SESSION_KEY_HEADER + too_big)[1] == 0x6F00


@pytest.mark.parametrize("fid", [0x0002])
def test_row14_offsets_count_from_byte_0_of_the_file(card: RawCard, fid: int) -> None:
    """RC §4.3: the four DF21 offsets are big-endian u16 file offsets of DF22..DF25."""
    select_aid(card, CARD_INFO)
    verify(card, 0x0011, CARD_INFO_PIN)
    content = read_physical(card, fid)
    fields = inner(content, 0xFF20)
    table = only(fields, 0xDF21).value(content)
    offsets = [int.from_bytes(table[i:i + 2], "big") for i in range(0, len(table), 2)]
    assert offsets == [only(fields, t).start for t in (0xDF22, 0xDF23, 0xDF24, 0xDF25)]
    assert offsets[0] == 3 + 2 + 1 + 8  # FF 20 L, DF 21 08, eight bytes


def test_row07_a_failed_verify_under_sm_still_costs_a_try(card: RawCard) -> None:
    """RC §4.7: the retry counter is not protected: a wrong 照合番号A under SM costs a try
    (63C9, N advances), plain empty VERIFY in between does not advance N, the right one
    restores the counter."""
    select_aid(card, CARD_INFO)
    verify(card, 0x0011, CARD_INFO_PIN)
    key = _session_key(card, secrets.token_bytes(32))
    assert card.transmit(raw_sm.sm_verify(key, 1, 0x14, b"000000000000"))[1] == 0x63C9
    assert card.transmit("00 20 00 94")[1] == 0x63C9  # plain retry query by SFI
    assert card.transmit(raw_sm.sm_verify(key, 2, 0x14, SAMPLE_NUMBER.encode()))[1] == 0x9000
    assert card.transmit("00 20 00 94")[1] == 0x63CA
