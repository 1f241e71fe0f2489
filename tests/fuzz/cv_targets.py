"""Fuzz targets: the card's own encodings (RC §2.2, §6): CV certificates, the 265-byte
card RSA key, key IDs, CV chains against the published anchors, JICSAP simple TLV, the
card's TLV-with-filler files."""

from __future__ import annotations

from cardlib import card_tlv
from cardlib.cv_certificate import (
    CvChainError,
    KeyId,
    decode_card_rsa_key,
    decode_cv_certificate,
    encode_card_rsa_key,
    verify_cv_chain,
)
from cardlib.errors import CardDataError
from cardlib.simple_tlv import encode_simple_tlv, parse_simple_tlvs
from cardlib.trust_anchors import PUBLISHED_ANCHORS, published_anchor_keys

from .reader import Reader
from .registry import check, refusals, target

_ANCHORS: dict[bytes, object] = {}

CV_BODY_HEADER = bytes.fromhex("5F4E820129")
CV_SIGNATURE_HEADER = bytes.fromhex("5F37820100")


def _cv_seeds() -> list[bytes]:
    anchor = PUBLISHED_ANCHORS[0]
    key = encode_card_rsa_key(anchor.public_key())
    contents = CV_BODY_HEADER + anchor.key_id.raw + anchor.key_id.raw + key + CV_SIGNATURE_HEADER
    contents += bytes(256)
    return [bytes.fromhex("7F21820233") + contents + b"\xff" * 8, contents, key,
            anchor.key_id.raw]


@target("cv_certificate", _cv_seeds)
def cv_certificate(data: bytes) -> None:
    """Parse, re-encode, parse again to the same certificate; a chain of fuzzed
    certificates never verifies under the published anchors (no forgery)."""
    with refusals(CardDataError):
        certificate = decode_cv_certificate(data)
        for template in (True, False):
            again = decode_cv_certificate(certificate.encode(template=template))
            check((again.body, again.signature, again.issuer, again.holder) ==
                  (certificate.body, certificate.signature, certificate.issuer, certificate.holder),
                  "CV certificate round trip")
        if not _ANCHORS:
            _ANCHORS.update(published_anchor_keys())
        try:
            verify_cv_chain([certificate], _ANCHORS)  # type: ignore[arg-type]
        except CvChainError:
            return
        raise AssertionError("a fuzzed CV certificate verified under a published anchor")


@target("cv_card_rsa_key_and_key_id", _cv_seeds)
def cv_card_rsa_key_and_key_id(data: bytes) -> None:
    with refusals(CardDataError):
        key = decode_card_rsa_key(data)
        check(encode_card_rsa_key(key) == data, "card RSA key round trip")
    with refusals(CardDataError):
        key_id = KeyId(data)
        check(KeyId.parse(key_id.text) == key_id, "key ID text round trip")
    with refusals(ValueError):
        text = data.decode("utf-8", "replace")
        parsed = KeyId.parse(text)
        check(parsed.text == text or parsed.text + " (00)" == text, "key ID parse round trip")


@target("simple_tlv", lambda: [bytes.fromhex("011C") + b"0" * 28 + b"\xff" * 4,
                               bytes.fromhex("02FF0003414243")])
def simple_tlv(data: bytes) -> None:
    with refusals(CardDataError):
        items = parse_simple_tlvs(data)
        encoded = b"".join(encode_simple_tlv(item.tag, item.value) for item in items)
        check(parse_simple_tlvs(encoded) == items, "simple TLV round trip")


@target("card_tlv_filler", lambda: [bytes.fromhex("FF1003DF1100") + b"\xff" * 5])
def card_tlv_filler(data: bytes) -> None:
    reader = Reader(data)
    tag = reader.pick((0xFF10, 0xFF20, 0xFF30, 0xFF40, 0xFF50, 0x7F21, reader.integer(2)))
    raw = data[reader.pos :]
    with refusals(CardDataError):
        item, header = card_tlv.object_and_filler(raw, tag, "fuzz")
        check(raw[header : header + len(item.value)] == item.value, "object header size")
        with refusals(CardDataError):
            card_tlv.children_in_order(item.value, [(0xDF11, "a"), (0xDF12, "b")], "fuzz")
        rebuilt = card_tlv.card_tlv(item.tag, item.value)
        again, _ = card_tlv.object_and_filler(rebuilt, tag, "fuzz")
        check(again == item, "card TLV round trip")


def _card_info_seeds() -> list[bytes]:
    from cardlib.card_info_records import BasicInfo, SignedKey, encode_basic_info, encode_session_key_file

    key = PUBLISHED_ANCHORS[0].public_key()
    return [encode_basic_info(BasicInfo(b"\x01\x03\x00\x00", KeyId.of("7000031", "001"), bytes(32))),
            encode_session_key_file(key) + b"\xff" * 7,
            SignedKey(encode_card_rsa_key(key), bytes(256)).encode()]


@target("card_info_records", _card_info_seeds)
def card_info_records(data: bytes) -> None:
    """EF 0005 / 0006 / 0007 of the card-info AP: parse, re-encode, parse to the same; a
    fuzzed EF 0007 never verifies under a published CA key."""
    from cardlib.card_info_records import (
        SignedKey,
        decode_basic_info,
        decode_session_key_file,
        decode_signed_key,
        encode_basic_info,
        encode_session_key_file,
    )

    with refusals(CardDataError):
        info = decode_basic_info(data)
        check(decode_basic_info(encode_basic_info(info)) == info, "EF 0005 round trip")
    with refusals(CardDataError):
        key = decode_session_key_file(data)
        again = decode_session_key_file(encode_session_key_file(key))
        check(again.public_numbers() == key.public_numbers(), "EF 0006 round trip")
    with refusals(CardDataError):
        signed = decode_signed_key(data)
        check(decode_signed_key(signed.encode()) == signed, "EF 0007 round trip")
        check(isinstance(signed, SignedKey) and not signed.verifies_under(
            PUBLISHED_ANCHORS[0].public_key()), "a fuzzed EF 0007 verified under a CA key")
