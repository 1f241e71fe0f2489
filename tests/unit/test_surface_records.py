"""The card-surface AP's records (RC §5.2, §5.3): layouts, offsets, the three-digest face
signature, and the attacks on them."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from hypothesis import given, settings
from hypothesis import strategies as st

from cardlib import surface_records as sr
from cardlib.card_tlv import card_tlv
from cardlib.cv_certificate import KeyId, encode_card_rsa_key
from cardlib.errors import CardDataError

PNG = sr.PNG_MAGIC + b"IHDR" + bytes(40)
JP2 = b"\x00\x00\x00\x0cjP  \r\n\x87\n" + bytes(300)


@functools.cache
def key(index: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


def sign(data: bytes) -> bytes:
    return key(0).sign(data, padding.PKCS1v15(), hashes.SHA256())


def sign_padded(payload: bytes) -> bytes:
    """What the token's CKM_RSA_PKCS does: PKCS#1 v1.5 type 1 over ``payload`` as given."""
    n = key(0).private_numbers().public_numbers.n
    block = b"\x00\x01" + b"\xff" * (256 - 3 - len(payload)) + b"\x00" + payload
    d = key(0).private_numbers().d
    return pow(int.from_bytes(block, "big"), d, n).to_bytes(256, "big")


CARD_KEY = encode_card_rsa_key(key(1).public_key())


def unsigned_face(**changes) -> sr.CardFace:  # type: ignore[no-untyped-def]
    face = sr.CardFace(dt.date(1980, 2, 17), "1", CARD_KEY, PNG, PNG + b"addr", JP2, b"",
                       dt.date(2035, 2, 17), PNG + b"code")
    return replace(face, **changes)


def test_age_record_layout_and_signature() -> None:
    raw = sr.encode_age_record(dt.date(1980, 2, 17), CARD_KEY, sign)
    assert len(raw) == 547 and raw[:5] == bytes.fromhex("FF 10 82 02 1E")
    assert raw[5:16] == b"\xdf\x11\x0819800217"
    assert raw[16:21] == bytes.fromhex("DF 12 82 01 09") and raw[21:286] == CARD_KEY
    assert raw[286:291] == bytes.fromhex("DF 13 82 01 00")
    age = sr.decode_age_record(raw + b"\xff" * 13)
    assert age.birth_date == dt.date(1980, 2, 17) and age.card_key == CARD_KEY
    assert age.signed_part() == raw[5:286]
    assert age.verifies_under(key(0).public_key()) and not age.verifies_under(key(1).public_key())
    assert age.public_key.public_numbers() == key(1).public_key().public_numbers()


def test_face_layout_offsets_from_the_file() -> None:
    raw = sr.encode_face(sr.sign_face(unsigned_face(), sign_padded))
    assert raw[:3] == b"\xff\x20\x82" and int.from_bytes(raw[3:5], "big") == len(raw) - 5
    assert raw[5:8] == b"\xdf\x21\x12"
    offsets = [int.from_bytes(raw[8 + 2 * i:10 + 2 * i], "big") for i in range(9)]
    assert offsets[0] == 0x1A  # RC §5.2 [D]
    tags = [raw[o:o + 2].hex().upper() for o in offsets]
    assert tags == ["DF22", "DF23", "DF24", "DF25", "DF26", "DF27", "DF28", "DF29", "DF2A"]
    face = sr.decode_face(raw + b"\xff" * 100)
    assert face == sr.sign_face(unsigned_face(), sign_padded)
    assert sr.encode_face(face) == raw
    moved = bytearray(raw)
    moved[9] += 1
    with pytest.raises(CardDataError, match="offsets DF21 offset 1 is 27, but birth date DF22"):
        sr.decode_face(bytes(moved))


def test_face_payload_is_the_three_digests() -> None:
    face = sr.decode_face(sr.encode_face(sr.sign_face(unsigned_face(), sign_padded)))
    h1 = hashlib.sha256(b"\xdf\x22\x0819800217" + b"\xdf\x23\x011"
                        + b"\xdf\x24\x82\x01\x09" + CARD_KEY).digest()
    h2 = hashlib.sha256(card_tlv(0xDF25, PNG) + card_tlv(0xDF26, PNG + b"addr")).digest()
    h3 = hashlib.sha256(card_tlv(0xDF27, JP2)).digest()
    payload = sr.face_signed_payload(face)
    assert payload == bytes.fromhex("3071300D06096086480165030402010500 0460".replace(" ", "")) \
        + h1 + h2 + h3
    assert len(payload) == 0x73
    assert sr.verify_face_signature(face, key(0).public_key())
    assert not sr.verify_face_signature(face, key(1).public_key())


def test_face_signature_covers_groups_1_to_3_but_not_expiry_or_code() -> None:
    signed = sr.sign_face(unsigned_face(), sign_padded)
    for change in ({"sex": "2"}, {"birth_date": dt.date(1980, 2, 18)}, {"name_png": PNG + b"x"},
                   {"photo_jp2": JP2 + b"x"}, {"card_key": encode_card_rsa_key(key(2).public_key())}):
        forged = sr.decode_face(sr.encode_face(replace(signed, **change)))
        assert not sr.verify_face_signature(forged, key(0).public_key()), change
    later = sr.decode_face(sr.encode_face(replace(signed, expiry=dt.date(2045, 1, 1),
                                                  code_png=PNG + b"9999")))
    assert sr.verify_face_signature(later, key(0).public_key())  # RC §5.2: not covered


def test_a_standard_sha256_signature_is_not_a_face_signature() -> None:
    face = sr.sign_face(unsigned_face(), sign_padded)
    digest = hashlib.sha256(sr.face_signed_payload(face)).digest()
    plain = key(0).sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
    assert not sr.verify_face_signature(replace(face, signature=plain), key(0).public_key())


@pytest.mark.parametrize(("change", "message"), [
    ({"photo_jp2": PNG}, "photo DF27: not a JP2"),
    ({"name_png": JP2}, "name image DF25: not a PNG"),
    ({"code_png": b"GIF89a"}, "DF2A: not a PNG"),
    ({"sex": "3"}, "sex DF23"),
    ({"card_key": CARD_KEY[:-1]}, "card key DF24"),
])
def test_face_field_checks(change, message: str) -> None:  # type: ignore[no-untyped-def]
    signed = sr.sign_face(unsigned_face(), sign_padded)
    with pytest.raises(ValueError, match=message):
        sr.encode_face(replace(signed, **change))
    good = sr.encode_face(signed)
    items = list(sr.decode_face(good).tlvs())
    tag_index = {"photo_jp2": 5, "name_png": 3, "code_png": 8, "sex": 1, "card_key": 2}
    (name, value), = change.items()
    items[tag_index[name]] = card_tlv(sr.FACE_FIELDS[tag_index[name] + 1][0],
                                      value.encode() if isinstance(value, str) else value)
    from cardlib.records import with_offset_table
    with pytest.raises(CardDataError, match=message):
        sr.decode_face(with_offset_table(0xFF20, 0xDF21, items))


def test_basic_info_layout() -> None:
    info = sr.SurfaceBasicInfo(bytes.fromhex("06030E01"), KeyId.parse("6000024/001").raw, b"\x00",
                               "13221", KeyId.parse("5900025/001").raw + bytes(256))
    raw = sr.encode_basic_info(info)
    assert raw[:5] == bytes.fromhex("FF 30 82 01 3B")
    assert raw[5:12] == bytes.fromhex("DF 31 04 06 03 0E 01")
    assert raw[31:35] == bytes.fromhex("DF 33 01 00") and raw[35:43] == b"\xdf\x34\x0513221"
    assert raw[43:48] == bytes.fromhex("DF 35 82 01 10")
    decoded = sr.decode_basic_info(raw + b"\xff" * 10)
    assert decoded == info and decoded.key_id.text == "6000024/001"
    assert decoded.opaque_key_id.text == "5900025/001"
    with pytest.raises(CardDataError, match="DF34"):
        sr.decode_basic_info(raw.replace(b"13221", b"1322x"))


def test_rendered_number() -> None:
    raw = sr.encode_rendered_number(PNG, CARD_KEY, sign)
    assert raw[:2] == b"\xff\x40"
    number = sr.decode_rendered_number(raw + b"\xff")
    assert number.png == PNG and number.card_key == CARD_KEY
    assert number.verifies_under(key(0).public_key())
    assert number.signed_part() == card_tlv(0xDF41, PNG) + card_tlv(0xDF42, CARD_KEY)
    with pytest.raises(ValueError, match="DF41"):
        sr.encode_rendered_number(JP2, CARD_KEY, sign)


def test_signatures_checked_over_the_bytes_as_read() -> None:
    """A 128–255-byte image written with 81 xx still verifies: we hash what the file holds."""
    png = PNG + bytes(150 - len(PNG))
    signed = (b"\xdf\x41\x81\x96" + png) + card_tlv(0xDF42, CARD_KEY)
    raw = card_tlv(0xFF40, signed + card_tlv(0xDF43, sign(signed)))
    number = sr.decode_rendered_number(raw)
    assert number.signed_part() == signed and number.verifies_under(key(0).public_key())


@given(st.binary(max_size=700))
@settings(max_examples=200)
def test_random_bytes_raise_only_card_data_error(raw: bytes) -> None:
    for decode in (sr.decode_age_record, sr.decode_face, sr.decode_basic_info,
                   sr.decode_rendered_number, sr.decode_card_key):
        with contextlib.suppress(CardDataError):
            decode(raw)


@given(st.dates(dt.date(1900, 1, 1), dt.date(2099, 12, 31)), st.sampled_from("0129"),
       st.binary(max_size=300), st.binary(max_size=300), st.integers(0, 40))
@settings(max_examples=30, deadline=None)
def test_face_round_trip(birth: dt.date, sex: str, name: bytes, photo: bytes, filler: int) -> None:
    face = sr.sign_face(unsigned_face(birth_date=birth, sex=sex, name_png=sr.PNG_MAGIC + name,
                                      photo_jp2=JP2 + photo), sign_padded)
    decoded = sr.decode_face(sr.encode_face(face) + b"\xff" * filler)
    assert decoded == face and sr.verify_face_signature(decoded, key(0).public_key())


@given(st.dates(dt.date(1900, 1, 1), dt.date(2099, 12, 31)), st.binary(max_size=300))
@settings(max_examples=20, deadline=None)
def test_age_and_number_round_trip(birth: dt.date, png: bytes) -> None:
    assert sr.decode_age_record(sr.encode_age_record(birth, CARD_KEY, sign)).birth_date == birth
    number = sr.decode_rendered_number(sr.encode_rendered_number(sr.PNG_MAGIC + png, CARD_KEY, sign))
    assert number.png == sr.PNG_MAGIC + png
