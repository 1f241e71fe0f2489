"""Fuzz targets: the surface AP's records (RC §5.2: age record, card face with its
offsets and three-digest payload, basic data, rendered number), the JPKI EF 0006/0008
(RC §7.3) and the 和暦 collation values (RC §4.2)."""

from __future__ import annotations

import datetime as dt
import functools

from cardlib import collation, jpki_token_info, surface_records
from cardlib.cv_certificate import KeyId, encode_card_rsa_key
from cardlib.errors import CardDataError
from cardlib.trust_anchors import PUBLISHED_ANCHORS

from .reader import Reader
from .registry import check, refusals, target

PNG = surface_records.PNG_MAGIC + b"\x00\x00\x00\x0dIHDR"
JP2 = b"\x00\x00\x00\x0c" + surface_records.JP2_MAGIC + b"\x0d\x0a\x87\x0a"


@functools.cache
def _card_key() -> bytes:
    return encode_card_rsa_key(PUBLISHED_ANCHORS[0].public_key())


def _surface_seeds() -> list[bytes]:
    key, signature = _card_key(), bytes(256)
    face = surface_records.CardFace(dt.date(1980, 2, 17), "1", key, PNG, PNG, JP2, signature,
                                    dt.date(2035, 2, 17), PNG)
    basic = surface_records.SurfaceBasicInfo(b"\x06\x03\x0e\x01", KeyId.of("7000021", "001"), b"\x01",
                                             "13101", KeyId.of("7000021", "001").raw + bytes(256))
    return [surface_records.encode_age_record(dt.date(1980, 2, 17), key, lambda _d: signature),
            surface_records.encode_face(face) + b"\xff" * 9,
            surface_records.encode_basic_info(basic),
            surface_records.encode_rendered_number(PNG, key, lambda _d: signature)]


@target("surface_records", _surface_seeds)
def surface_records_target(data: bytes) -> None:
    """Each record parses to what its re-encoding parses to, and no fuzzed record's
    signature verifies under a CA key (the face payload included)."""
    ca_key = PUBLISHED_ANCHORS[0].public_key()
    with refusals(CardDataError):
        age = surface_records.decode_age_record(data)
        check(not age.verifies_under(ca_key), "a fuzzed age record verified")
    with refusals(CardDataError):
        face = surface_records.decode_face(data)
        again = surface_records.decode_face(surface_records.encode_face(face))
        check(again == face and again.tlvs() == face.tlvs(), "card face round trip")
        check(surface_records.face_signed_payload(face).startswith(
            surface_records.FACE_DIGEST_INFO_PREFIX), "face payload prefix")
        check(not surface_records.verify_face_signature(face, ca_key), "a fuzzed face verified")
    with refusals(CardDataError):
        basic = surface_records.decode_basic_info(data)
        check(surface_records.decode_basic_info(surface_records.encode_basic_info(basic)) == basic,
              "surface basic info round trip")
    with refusals(CardDataError):
        number = surface_records.decode_rendered_number(data)
        check(not number.verifies_under(ca_key), "a fuzzed rendered number verified")


def _jpki_seeds() -> list[bytes]:
    info = jpki_token_info.TokenInfo.for_card("0123456789ABCDEF", "JUKI", "EMU")
    return [info.encode(), b"\x8f\x8f\x00", b"\x00\x8f\x00"]


@target("jpki_token_info", _jpki_seeds)
def jpki_token_info_target(data: bytes) -> None:
    with refusals(CardDataError):
        info = jpki_token_info.decode_token_info(data)
        check(jpki_token_info.decode_token_info(info.encode()) == info, "token info round trip")
    with refusals(CardDataError):
        availability = jpki_token_info.decode_cert_availability(data)
        check(jpki_token_info.decode_cert_availability(availability.encode()) == availability,
              "EF 0008 round trip")


@target("collation", lambda: [bytes.fromhex("07A2020C11") + b"1234", bytes.fromhex("0799010108")])
def collation_target(data: bytes) -> None:
    """和暦 YYMMDD of any date (or the documented ValueError) is 6 ASCII digits, and
    照合番号B is 14 digits ending in the code."""
    reader = Reader(data)
    with refusals(ValueError, OverflowError):
        date = dt.date(reader.integer(2) or 1, reader.byte() % 12 + 1, reader.byte() % 28 + 1)
        text = collation.wareki_yymmdd(date)
        check(len(text) == 6 and text.isascii() and text.isdigit(), f"和暦 {text!r}")
        code = reader.take(4).decode("latin-1")
        value = collation.collation_b(date, reader.integer(2), code)
        check(len(value) == 14 and value.isdigit() and value.endswith(code) and value.startswith(text),
              "照合番号B layout")
