"""JPKI AP on the emulator: PIN-gated signatures over DigestInfo, private sign cert."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from hypothesis import given
from hypothesis import strategies as st

from cardlib.apdu import CommandApdu
from cardlib.apps.base import WritableApSession
from cardlib.apps.jpki import JpkiApSession, JpkiKey
from cardlib.constants import JPKI_TOKEN_INFO_LENGTH, Aid, JpkiFile
from cardlib.digestinfo import PREFIXES, digest_info, prehashed_digest_info
from cardlib.errors import ApduError, InvalidPinError, SecurityStatusNotSatisfiedError
from tests.helpers import card_channel, personalising, raw


@pytest.fixture(scope="module")
def personalised_state():  # type: ignore[no-untyped-def]
    card, plain = card_channel()
    jpki = WritableApSession(personalising(plain), Aid.JPKI)
    jpki.select()
    keys = {JpkiKey.AUTH: jpki.generate_rsa_key(JpkiFile.AUTH_KEY),
            JpkiKey.SIGN: jpki.generate_rsa_key(JpkiFile.SIGN_KEY)}
    jpki.write_file(JpkiFile.TOKEN_INFO, b"JPKIAPICCTOKEN2".ljust(JPKI_TOKEN_INFO_LENGTH))
    jpki.write_file(JpkiFile.SIGN_CERT, b"\x30\x03\x02\x01\x00")
    jpki.set_pin(JpkiFile.AUTH_PIN, "1234")
    jpki.set_pin(JpkiFile.SIGN_PIN, "ABC123")
    return card.state.to_json(), keys


@pytest.fixture
def jpki(personalised_state):  # type: ignore[no-untyped-def]
    from cardlib.emulator.resident_card_os import ResidentCardOs
    from cardlib.emulator.state import CardState

    text, keys = personalised_state
    _card, channel = card_channel(ResidentCardOs(CardState.from_json(text)))
    session = JpkiApSession(channel)
    session.select()
    return session, keys


@pytest.mark.parametrize("key", list(JpkiKey))
def test_signature_needs_that_keys_pin_and_verifies(jpki, key: JpkiKey) -> None:  # type: ignore[no-untyped-def]
    session, keys = jpki
    digest = hashlib.sha256(b"document").digest()
    with pytest.raises(SecurityStatusNotSatisfiedError):
        session.sign_digest(key, hashes.SHA256(), digest)
    other = JpkiKey.SIGN if key is JpkiKey.AUTH else JpkiKey.AUTH
    session.verify_key_pin(other, "1234" if other is JpkiKey.AUTH else "ABC123")
    with pytest.raises(SecurityStatusNotSatisfiedError):  # the other key's PIN does not count
        session.sign_digest(key, hashes.SHA256(), digest)
    session.verify_key_pin(key, "1234" if key is JpkiKey.AUTH else "ABC123")
    signature = session.sign_digest(key, hashes.SHA256(), digest)
    keys[key].verify(signature, b"document", padding.PKCS1v15(), hashes.SHA256())


def test_token_info_and_private_sign_certificate(jpki) -> None:  # type: ignore[no-untyped-def]
    session, _ = jpki
    assert session.read_token_info() == "JPKIAPICCTOKEN2"
    with pytest.raises(SecurityStatusNotSatisfiedError):
        session.read_tlv_file(JpkiFile.SIGN_CERT)
    session.verify_key_pin(JpkiKey.SIGN, "ABC123")
    assert session.read_tlv_file(JpkiFile.SIGN_CERT) == b"\x30\x03\x02\x01\x00"


def test_pin_rules_and_counters(jpki) -> None:  # type: ignore[no-untyped-def]
    session, _ = jpki
    assert session.pin_status_of(JpkiKey.AUTH).tries_left == 3
    assert session.pin_status_of(JpkiKey.SIGN).tries_left == 5
    with pytest.raises(InvalidPinError) as info:
        session.verify_key_pin(JpkiKey.SIGN, "WRONG1")
    assert info.value.tries_left == 4


def test_p1_00_pads_whatever_it_is_given(jpki) -> None:  # type: ignore[no-untyped-def]
    """real-card.md §7.4/7.5: P1 00 pads the 1-245 given bytes as they are (not only a
    DigestInfo); 246 bytes do not fit a 2048-bit PKCS#1 block (6700)."""
    session, keys = jpki
    session.verify_key_pin(JpkiKey.AUTH, "1234")
    session.select_ef(JpkiFile.AUTH_KEY)
    signature = session.channel.send(CommandApdu(0x80, 0x2A, 0x00, 0x80, b"\x00" * 51, 256))
    recovered = keys[JpkiKey.AUTH].recover_data_from_signature(signature, padding.PKCS1v15(), None)
    assert recovered == b"\x00" * 51
    with pytest.raises(ApduError) as info:
        session.channel.send(CommandApdu(0x80, 0x2A, 0x00, 0x80, b"\x00" * 246, 256))
    assert info.value.sw == 0x6700


@pytest.mark.parametrize("name", sorted(PREFIXES))
def test_digest_info_round_trip(name: str) -> None:
    algorithm = {"sha1": hashes.SHA1, "sha224": hashes.SHA224, "sha256": hashes.SHA256,
                 "sha384": hashes.SHA384, "sha512": hashes.SHA512}[name]()
    digest = bytes(algorithm.digest_size)
    parsed = prehashed_digest_info(digest_info(algorithm, digest))
    assert parsed is not None and parsed[0].name == name and parsed[1] == digest


@given(st.binary(max_size=90))
def test_digest_info_parser_never_misreads(raw: bytes) -> None:
    parsed = prehashed_digest_info(raw)
    if parsed is not None:
        assert digest_info(parsed[0], parsed[1]) == raw


def test_raw_signature_apdu_after_reset_and_after_power_off(personalised_state) -> None:  # type: ignore[no-untyped-def]
    """Issue 11 defect 2 on the card side: after VERIFY of the sign PIN, a warm reset
    leaves ``80 2A 00 80`` working (as on the real card, real-card.md §2.1); after a
    power-off the same raw bytes, with no VERIFY, get 6982."""
    from cardlib.emulator.resident_card_os import ResidentCardOs
    from cardlib.emulator.state import CardState

    text, _keys = personalised_state
    card, channel = card_channel(ResidentCardOs(CardState.from_json(text)))
    session = JpkiApSession(channel)
    session.select()
    session.verify_key_pin(JpkiKey.SIGN, "ABC123")
    sign = ("80 2A 00 80 33" + digest_info(hashes.SHA256(), bytes(32)).hex() + "00")

    def attack() -> int:
        assert raw(card, "00 A4 04 0C 0A" + Aid.JPKI.hex())[1] == 0x9000
        assert raw(card, "00 A4 02 0C 02 001A")[1] == 0x9000
        data, sw = raw(card, sign)
        assert (len(data) == 256) == (sw == 0x9000)
        return sw

    card.reset()
    assert attack() == 0x9000
    card.power_off()
    card.power_on()
    assert attack() == 0x6982
