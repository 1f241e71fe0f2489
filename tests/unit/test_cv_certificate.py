"""CV certificates (RC §6), the card's 265-byte RSA key form (RC §2.2), key IDs, chains."""

from __future__ import annotations

import contextlib
import functools

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import given
from hypothesis import strategies as st

from cardlib.cv_certificate import (
    CvChainError,
    KeyId,
    cv_body,
    decode_card_rsa_key,
    decode_cv_certificate,
    encode_card_rsa_key,
    make_cv_certificate,
    verify_cv_chain,
)
from cardlib.errors import CardDataError


@functools.cache
def key(index: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


def issue(issuer: KeyId, holder: KeyId, subject: rsa.RSAPublicKey, ca: rsa.RSAPrivateKey):  # type: ignore[no-untyped-def]
    body = cv_body(issuer, holder, subject)
    return make_cv_certificate(issuer, holder, subject,
                               ca.sign(body, padding.PKCS1v15(), hashes.SHA256()))


ROOT = KeyId.parse("7000020/001")
MID = KeyId.parse("7000022/001")
LEAF = KeyId.parse("1322121/000")


def test_key_id_format() -> None:
    kid = KeyId.parse("6000023/001")
    assert kid.raw == b"6000023\x08\x05001\x00\x00\x00\x00"
    assert (kid.number, kid.group, kid.text) == ("6000023", "001", "6000023/001")
    root = KeyId.of("5000020", "001", 0xA8)
    assert root.raw == b"5000020\x08\x05001\x00\x00\x00\xa8"
    assert root.raw[-1] == 0xA8 and root.text == "5000020/001 (A8)"
    assert KeyId.parse(root.text) == root
    assert root != KeyId.parse("5000020/001")  # all 16 bytes count


@pytest.mark.parametrize("raw", [
    b"6000023\x08\x05001\x00\x00\x00",  # 15 bytes
    b"600002X\x08\x05001\x00\x00\x00\x00",
    b"6000023\x08\x06001\x00\x00\x00\x00",
    b"6000023\x08\x0500a\x00\x00\x00\x00",
    b"6000023\x08\x05001\x00\x01\x00\x00",
    b"9200073\x08\x050010000",  # myna-card's synthetic ID pads with ASCII '0'
])
def test_key_id_rejects_other_shapes(raw: bytes) -> None:
    with pytest.raises(CardDataError, match="key ID"):
        KeyId(raw)


@pytest.mark.parametrize("text", ["6000023", "600002/001", "6000023/01", "6000023/001 (a8)",
                                  "６000023/001"])
def test_key_id_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="key ID"):
        KeyId.parse(text)


def test_card_rsa_key_form() -> None:
    public = key(0).public_key()
    raw = encode_card_rsa_key(public)
    assert len(raw) == 265
    assert raw[:9] == bytes.fromhex("90 03 01 00 01 91 82 01 00")
    assert raw[9:] == public.public_numbers().n.to_bytes(256, "big")
    assert decode_card_rsa_key(raw).public_numbers() == public.public_numbers()


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda raw: raw[:-1], "264 bytes"),
    (lambda raw: raw + b"\x00", "266 bytes"),
    (lambda raw: b"\x90\x03\x01\x00\x03" + raw[5:], "exponent object 90"),
    (lambda raw: raw[:5] + b"\x91\x81\x01\x00" + raw[9:], "modulus object 91"),
    (lambda raw: raw[:9] + b"\x00" + raw[10:], "2048-bit"),
    (lambda raw: raw[:-1] + bytes((raw[-1] & 0xFE,)), "odd"),
])
def test_card_rsa_key_strict(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CardDataError, match=message):
        decode_card_rsa_key(mutate(encode_card_rsa_key(key(0).public_key())))


def test_certificate_layout_and_signature() -> None:
    cert = issue(ROOT, MID, key(1).public_key(), key(0))
    raw = cert.encode()
    assert len(raw) == 568
    assert raw[:10] == bytes.fromhex("7F 21 82 02 33 5F 4E 82 01 29")
    assert raw[10:26] == ROOT.raw and raw[26:42] == MID.raw
    assert raw[42:307] == encode_card_rsa_key(key(1).public_key())
    assert raw[307:312] == bytes.fromhex("5F 37 82 01 00")
    bare = cert.encode(template=False)
    assert bare == raw[5:] and bare[:2] == b"\x5f\x4e"
    for form in (raw, bare, raw + b"\xff" * 100, raw + b"\x00" * 3):
        decoded = decode_cv_certificate(form)
        assert decoded.issuer == ROOT and decoded.holder == MID
        assert decoded.body == raw[10:307] and decoded.signature == raw[312:]
        assert decoded.verifies_under(key(0).public_key())
        assert not decoded.verifies_under(key(1).public_key())


def test_tampered_body_does_not_verify() -> None:
    raw = bytearray(issue(ROOT, MID, key(1).public_key(), key(0)).encode())
    raw[30] ^= 0x01  # a holder-ID digit: still a valid ID ('0' -> '1'), another holder
    cert = decode_cv_certificate(bytes(raw))
    assert not cert.verifies_under(key(0).public_key())


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda raw: raw[:-1], "truncated"),
    (lambda raw: raw + b"\x5f\x37", "not filler"),
    (lambda raw: b"\x7f\x21\x82\x02\x34" + raw[5:], "7F 21 82 02 33"),
    (lambda raw: raw[:8] + b"\x2a" + raw[9:], "body 5F4E"),
    (lambda raw: raw[:309] + b"\x00\xff" + raw[311:], "signature 5F37"),
    (lambda raw: raw[:10] + b"X" + raw[11:], "issuer"),
    (lambda raw: raw[:28] + b"\x00" + raw[29:], "holder"),
    (lambda raw: raw[:42] + b"\x90\x01\x03" + raw[45:], "public key"),
    (lambda raw: b"\x30\x82" + raw[2:], "7F21 or 5F4E"),
])
def test_decode_names_what_is_wrong(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    raw = issue(ROOT, MID, key(1).public_key(), key(0)).encode()
    with pytest.raises(CardDataError, match=message):
        decode_cv_certificate(mutate(raw))


def test_chain_root_first() -> None:
    top = issue(ROOT, MID, key(1).public_key(), key(0))
    leaf = issue(MID, LEAF, key(2).public_key(), key(1))
    anchors = {ROOT.raw: key(0).public_key()}
    assert verify_cv_chain([top, leaf], anchors) is leaf
    assert verify_cv_chain([top], anchors) is top


def test_chain_attacks_fail() -> None:
    top = issue(ROOT, MID, key(1).public_key(), key(0))
    leaf = issue(MID, LEAF, key(2).public_key(), key(1))
    anchors = {ROOT.raw: key(0).public_key()}
    with pytest.raises(CvChainError, match="empty"):
        verify_cv_chain([], anchors)
    with pytest.raises(CvChainError, match="link 1: issuer 7000022/001 is not a trust anchor"):
        verify_cv_chain([leaf], anchors)
    # an anchor ID that differs only in the last byte is another key
    with pytest.raises(CvChainError, match="not a trust anchor"):
        verify_cv_chain([top], {KeyId.of("7000020", "001", 0xA8).raw: key(0).public_key()})
    # self-made root: the attacker's own key under our root's ID
    forged = issue(ROOT, MID, key(2).public_key(), key(2))
    with pytest.raises(CvChainError, match="link 1: certificate of 7000022/001 does not verify"):
        verify_cv_chain([forged, leaf], anchors)
    # a leaf signed by another key than the holder of the link above
    rogue = issue(MID, LEAF, key(2).public_key(), key(2))
    with pytest.raises(CvChainError, match="link 2"):
        verify_cv_chain([top, rogue], anchors)
    # links out of order
    other = issue(LEAF, MID, key(1).public_key(), key(2))
    with pytest.raises(CvChainError, match="link 2: issuer 1322121/000 is not the previous"):
        verify_cv_chain([top, other], anchors)
    assert isinstance(CvChainError("x"), CardDataError)


@given(st.binary(max_size=700))
def test_decode_random_bytes_raises_only_card_data_error(raw: bytes) -> None:
    with contextlib.suppress(CardDataError):
        decode_cv_certificate(raw)
    with contextlib.suppress(CardDataError):
        decode_card_rsa_key(raw)


@given(st.binary(min_size=16, max_size=16))
def test_key_id_random_bytes(raw: bytes) -> None:
    with contextlib.suppress(CardDataError):
        kid = KeyId(raw)
        assert KeyId.parse(kid.text) == kid


@given(st.from_regex(r"\A[0-9]{7}\Z"), st.from_regex(r"\A[0-9]{3}\Z"), st.integers(0, 255),
       st.binary(min_size=256, max_size=256), st.binary(max_size=40).map(
           lambda b: bytes(0xFF if x & 1 else 0 for x in b)))
def test_round_trip(number: str, group: str, last: int, signature: bytes, filler: bytes) -> None:
    issuer, holder = KeyId.of(number, group, last), KeyId.of(group + number[3:], "000")
    cert = make_cv_certificate(issuer, holder, key(3).public_key(), signature)
    for raw in (cert.encode() + filler, cert.encode(template=False)):
        assert decode_cv_certificate(raw).encode() == cert.encode()
