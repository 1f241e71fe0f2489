"""Fault injection into every host-side parser of card responses: whatever bytes and
status words a (broken or hostile) card sends, the host raises only ``CardError``s."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import hashes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cardlib.apps.base import WritableApSession
from cardlib.apps.card_info import CardInfoApSession
from cardlib.apps.common import CommonApSession
from cardlib.apps.issuer import IssuerSession
from cardlib.apps.jpki import JpkiApSession, JpkiKey
from cardlib.apps.piv import PivSession
from cardlib.apps.resident_registry import ResidentRegistrySession
from cardlib.channel import ApduChannel
from cardlib.constants import Aid, CardInfoFile, CommonFile, PivAlgorithm, PivKeyRef
from cardlib.errors import CardDataError, CardError
from cardlib.integrity import decode_integrity_record
from cardlib.piv_objects import (
    Chuid,
    data_object_content,
    parse_certificate_object,
    parse_dynamic_auth,
    parse_tag_list,
)
from cardlib.public_key import parse_public_key, parse_rsa_public_key
from cardlib.scp03.host import InitializeUpdateResponse, open_secure_channel
from cardlib.scp03.keys import StaticKeyPrfs
from tests.helpers import ScriptedTransport, SoftwareCipher

status_words = st.one_of(
    st.just(0x9000), st.integers(0x6100, 0x61FF), st.integers(0x6C00, 0x6CFF),
    st.integers(0x63C0, 0x63CF), st.sampled_from([0x6982, 0x6983, 0x6984, 0x6985, 0x6A82, 0x6B00]),
    st.integers(0, 0xFFFF),
)
answers = st.lists(st.tuples(st.binary(max_size=300), status_words), min_size=1, max_size=12)

OPERATIONS: dict[str, Callable[[ApduChannel], object]] = {
    "read_card_info": lambda ch: CommonApSession(ch).read_card_info(),
    "internal_authenticate": lambda ch: CommonApSession(ch).internal_authenticate(b"\x01" * 32),
    "read_four_info": lambda ch: CardInfoApSession(ch).read_four_info(),
    "read_individual_number": lambda ch: CardInfoApSession(ch).read_individual_number(),
    "pin_status": lambda ch: CardInfoApSession(ch).pin_status(),
    "verify_pin": lambda ch: CardInfoApSession(ch).verify_pin("1234"),
    "issuer_info": lambda ch: IssuerSession(ch).read_info(),
    "generate_key": lambda ch: WritableApSession(ch, Aid.COMMON).generate_rsa_key(CommonFile.AUTH_KEY),
    "select": lambda ch: CardInfoApSession(ch).select(),
    "read_tlv_file": lambda ch: CardInfoApSession(ch).read_tlv_file(CardInfoFile.BASIC_INFO),
    "jpki_certificate": lambda ch: JpkiApSession(ch).read_certificate("auth"),
    "jpki_token_info": lambda ch: JpkiApSession(ch).read_token_info(),
    "jpki_sign": lambda ch: JpkiApSession(ch).sign_digest(JpkiKey.AUTH, hashes.SHA256(), bytes(32)),
    "registry_code": lambda ch: ResidentRegistrySession(ch).read_code(),
    "registry_history": lambda ch: ResidentRegistrySession(ch).read_history(),
    "piv_chuid": lambda ch: PivSession(ch).read_chuid(),
    "piv_certificate": lambda ch: PivSession(ch).read_certificate(PivKeyRef.AUTHENTICATION),
    "piv_info": lambda ch: PivSession(ch).info(),
    "piv_pin_status": lambda ch: PivSession(ch).pin_status(),
    "piv_verify": lambda ch: PivSession(ch).verify_pin("123456"),
    "piv_unblock": lambda ch: PivSession(ch).unblock_pin("12345678", "123456"),
    "piv_sign_rsa": lambda ch: PivSession(ch).sign_sha256(
        PivKeyRef.AUTHENTICATION, PivAlgorithm.RSA_2048, b"challenge"),
    "piv_sign_ec": lambda ch: PivSession(ch).sign_sha256(
        PivKeyRef.AUTHENTICATION, PivAlgorithm.ECC_P256, b"challenge"),
    "piv_management": lambda ch: PivSession(ch).authenticate_management(
        SoftwareCipher(bytes(16))),
    "piv_generate_rsa": lambda ch: PivSession(ch).generate_key(
        PivKeyRef.AUTHENTICATION, PivAlgorithm.RSA_2048),
    "piv_generate_ec": lambda ch: PivSession(ch).generate_key(
        PivKeyRef.CARD_AUTHENTICATION, PivAlgorithm.ECC_P256),
    "initialize_update": lambda ch: open_secure_channel(
        ch, StaticKeyPrfs.from_software_keys(bytes(16), bytes(16)), 0x33),
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(script=answers)
def test_any_card_answer_yields_a_card_error_or_a_result(operation: str, script) -> None:  # type: ignore[no-untyped-def]
    replies = iter(script)

    def answer(_apdu: bytes) -> tuple[bytes, int]:
        return next(replies, (b"", 0x9000))

    channel = ApduChannel(ScriptedTransport(answer), max_get_response_rounds=8)
    with contextlib.suppress(CardError):
        OPERATIONS[operation](channel)


@pytest.mark.parametrize("parser", [
    decode_integrity_record, InitializeUpdateResponse.parse, Chuid.decode,
    parse_certificate_object, parse_dynamic_auth, parse_tag_list,
    lambda raw: data_object_content(raw, "fuzz"),
    lambda raw: parse_public_key(raw, PivAlgorithm.RSA_2048),
    lambda raw: parse_public_key(raw, PivAlgorithm.ECC_P256),
])
@given(raw=st.binary(max_size=120))
def test_card_file_and_sm_parsers_fuzz(parser, raw: bytes) -> None:  # type: ignore[no-untyped-def]
    with contextlib.suppress(CardDataError):
        parser(raw)


@given(st.binary(max_size=300))
def test_public_key_template_fuzz(raw: bytes) -> None:
    with contextlib.suppress(CardDataError):
        parse_rsa_public_key(raw)


def test_wrong_signature_length_is_reported() -> None:
    channel = ApduChannel(ScriptedTransport(lambda apdu: (b"\x00" * 128, 0x9000)))
    with pytest.raises(CardDataError, match="256-byte signature"):
        CommonApSession(channel).internal_authenticate(b"\x01" * 32)


def test_status_only_9000_means_already_verified_never_a_pin_check() -> None:
    """CVE-2023-40660 pattern: a bare 9000 to the status query means 'already
    verified', reported as such, and never as a PIN check that passed."""
    channel = ApduChannel(ScriptedTransport(lambda apdu: (b"", 0x9000)))
    status = CardInfoApSession(channel).pin_status()
    assert status.verified and status.tries_left is None


PIV_TAGS = [0x53, 0x70, 0x71, 0xFE, 0x30, 0x34, 0x35, 0x3E, 0x7C, 0x80, 0x81, 0x82, 0x7F49,
            0x86, 0x5C]


def _tlv(tag: int, value: bytes) -> bytes:
    from cardlib.tlv import Tlv

    return Tlv(tag, value).encode()


piv_tlv = st.recursive(
    st.builds(_tlv, st.sampled_from(PIV_TAGS), st.binary(max_size=40)),
    lambda inner: st.builds(lambda tag, parts: _tlv(tag, b"".join(parts)),
                            st.sampled_from(PIV_TAGS), st.lists(inner, max_size=4)),
    max_leaves=8,
)


@pytest.mark.parametrize("parser", [
    Chuid.decode, parse_certificate_object, parse_dynamic_auth, parse_tag_list,
    lambda raw: data_object_content(raw, "fuzz"),
    lambda raw: Chuid.decode(data_object_content(raw, "fuzz")),
    lambda raw: parse_public_key(raw, PivAlgorithm.RSA_2048),
    lambda raw: parse_public_key(raw, PivAlgorithm.ECC_P256),
])
@settings(max_examples=300)
@given(raw=st.lists(piv_tlv, min_size=1, max_size=3).map(b"".join))
def test_piv_parsers_on_tlv_shaped_input(parser, raw: bytes) -> None:  # type: ignore[no-untyped-def]
    """Well-formed TLV with the PIV tags, nested at random: parsed or refused by name."""
    with contextlib.suppress(CardDataError):
        parser(raw)
