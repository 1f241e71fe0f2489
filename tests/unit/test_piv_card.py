"""The emulated PIV operator card through the host PIV session, in process: PIN rules,
management-key mutual authentication, key generation, signatures, chaining."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from cardlib.apdu import CommandApdu
from cardlib.apps.piv import PivSession, pkcs1_v15_block
from cardlib.channel import ApduChannel
from cardlib.constants import (
    PIV_DEFAULT_PIN,
    PIV_DEFAULT_PUK,
    PivAlgorithm,
    PivKeyRef,
)
from cardlib.emulator.piv_card import PivCard
from cardlib.emulator.profiles import blank_operator_card
from cardlib.emulator.state import CardState
from cardlib.errors import (
    ApduError,
    InvalidPinError,
    PinBlockedError,
    SecureMessagingError,
    SecurityStatusNotSatisfiedError,
)
from cardlib.piv_objects import dynamic_auth, pad_pin, parse_dynamic_auth
from cardlib.transport import InProcessTransport
from tests.helpers import ScriptedTransport, SoftwareCipher

MANAGEMENT_KEY = bytes(range(16))
GUID = bytes.fromhex("00112233445566778899AABBCCDDEEFF")


def new_card() -> tuple[PivCard, list[str], PivSession]:
    saved: list[str] = []
    card = PivCard(blank_operator_card("123456789012345", GUID, MANAGEMENT_KEY),
                   lambda state: saved.append(state.to_json()))
    session = PivSession(ApduChannel(InProcessTransport(card)))
    session.select()
    return card, saved, session


def self_signed(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "op-test")])
    now = dt.datetime.now(dt.UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))


def test_blank_card_answers_chuid_and_has_no_certificate() -> None:
    _, _, piv = new_card()
    info = piv.info()
    assert info.guid == GUID.hex().upper()
    assert not info.has_auth_certificate
    assert piv.read_certificate(PivKeyRef.AUTHENTICATION) is None


def test_select_returns_application_property_template_and_accepts_truncated_aid() -> None:
    card, _, _ = new_card()
    raw = card.process_apdu(bytes.fromhex("00A4040009A00000030800001000") + b"\x00")
    assert raw[-2:] == b"\x90\x00" and raw[0] == 0x61
    assert bytes.fromhex("4F06000010000100") in raw
    assert card.process_apdu(bytes.fromhex("00A4040005A000000309"))[-2:] == b"\x6a\x82"


def test_pin_counter_is_decremented_and_persisted_before_comparison() -> None:
    card, saved, piv = new_card()
    with pytest.raises(InvalidPinError) as info:
        piv.verify_pin("999999")
    assert info.value.tries_left == 2
    persisted = CardState.from_json(saved[-1])
    assert persisted.apps[next(iter(persisted.apps))].pins["80"].tries_left == 2
    piv.verify_pin(PIV_DEFAULT_PIN)
    assert piv.pin_status().verified
    assert card.piv.pins["80"].tries_left == 3


def test_pin_blocks_after_three_and_puk_unblocks() -> None:
    _, _, piv = new_card()
    for left in (2, 1):
        with pytest.raises(InvalidPinError) as info:
            piv.verify_pin("000000")
        assert info.value.tries_left == left
    with pytest.raises(PinBlockedError):
        piv.verify_pin("000000")
    with pytest.raises(PinBlockedError):
        piv.verify_pin(PIV_DEFAULT_PIN)  # blocked: even the right PIN is refused
    assert piv.pin_status().blocked
    piv.unblock_pin(PIV_DEFAULT_PUK, "24681357")
    piv.verify_pin("24681357")


def test_wrong_puk_is_counted_and_blocks() -> None:
    _, _, piv = new_card()
    for left in (2, 1):
        with pytest.raises(InvalidPinError) as info:
            piv.unblock_pin("00000000", "111111")
        assert info.value.tries_left == left
    with pytest.raises(PinBlockedError):
        piv.unblock_pin("00000000", "111111")
    with pytest.raises(PinBlockedError):
        piv.unblock_pin(PIV_DEFAULT_PUK, "111111")


def test_change_pin_and_puk_need_the_old_value() -> None:
    _, _, piv = new_card()
    with pytest.raises(InvalidPinError):
        piv.change_reference(PivKeyRef.PIN, "654321", "112233")
    piv.change_reference(PivKeyRef.PIN, PIV_DEFAULT_PIN, "112233")
    piv.change_reference(PivKeyRef.PUK, PIV_DEFAULT_PUK, "87654321")
    piv.verify_pin("112233")
    with pytest.raises(InvalidPinError):
        piv.verify_pin(PIV_DEFAULT_PIN)


def test_pin_format_is_checked_on_both_sides() -> None:
    card, _, _ = new_card()
    with pytest.raises(ValueError):
        pad_pin("12345")  # too short: never sent
    bad_new = pad_pin(PIV_DEFAULT_PIN) + b"12ab\xff\xff\xff\xff"
    raw = card.process_apdu(CommandApdu(0, 0x24, 0, 0x80, bad_new).encode())
    assert raw == b"\x6a\x80"
    assert card.piv.pins["80"].tries_left == 3  # a malformed new PIN costs no try


def test_management_key_mutual_authentication_gates_generation() -> None:
    _, _, piv = new_card()
    with pytest.raises(SecurityStatusNotSatisfiedError):
        piv.generate_key(PivKeyRef.AUTHENTICATION, PivAlgorithm.ECC_P256)
    with pytest.raises(SecurityStatusNotSatisfiedError):
        piv.authenticate_management(SoftwareCipher(bytes(16)))  # wrong key
    piv.authenticate_management(SoftwareCipher(MANAGEMENT_KEY))
    public = piv.generate_key(PivKeyRef.AUTHENTICATION, PivAlgorithm.ECC_P256)
    assert isinstance(public, ec.EllipticCurvePublicKey)


def test_card_that_does_not_hold_the_key_is_caught_by_our_challenge() -> None:
    """A card that answers our challenge with anything but E(K, challenge) is refused."""
    witness_enc = SoftwareCipher(MANAGEMENT_KEY).encrypt_block(b"w" * 16)

    def answer(apdu: bytes) -> tuple[bytes, int]:
        items = parse_dynamic_auth(CommandApdu.decode(apdu).data)
        if items.get(0x80) == b"":
            return dynamic_auth(witness=witness_enc), 0x9000
        return dynamic_auth(response=b"\x00" * 16), 0x9000

    piv = PivSession(ApduChannel(ScriptedTransport(answer)))
    with pytest.raises(SecureMessagingError):
        piv.authenticate_management(SoftwareCipher(MANAGEMENT_KEY))


def test_management_witness_is_single_use() -> None:
    card, _, _ = new_card()
    cipher = SoftwareCipher(MANAGEMENT_KEY)
    step1 = CommandApdu(0, 0x87, 0x08, 0x9B, dynamic_auth(witness=b""), ne=256).encode()
    raw = card.process_apdu(step1)
    witness = cipher.decrypt_block(parse_dynamic_auth(raw[:-2])[0x80])
    step2 = CommandApdu(0, 0x87, 0x08, 0x9B,
                        dynamic_auth(witness=witness, challenge=b"c" * 16), ne=256).encode()
    card.process_apdu(bytes.fromhex("00CB3FFF055C035FC102"))  # anything in between ...
    assert card.process_apdu(step2)[-2:] == b"\x6a\x80"  # ... spends the witness
    raw = card.process_apdu(step1)
    witness = cipher.decrypt_block(parse_dynamic_auth(raw[:-2])[0x80])
    step2 = CommandApdu(0, 0x87, 0x08, 0x9B,
                        dynamic_auth(witness=witness, challenge=b"c" * 16), ne=256).encode()
    assert card.process_apdu(step2)[-2:] == b"\x90\x00"
    assert card.process_apdu(step2)[-2:] == b"\x6a\x80"  # replayed step 2


@pytest.mark.parametrize("algorithm", [PivAlgorithm.RSA_2048, PivAlgorithm.ECC_P256])
def test_9a_signs_only_after_pin_and_9e_without(algorithm: int) -> None:
    card, _, piv = new_card()
    piv.authenticate_management(SoftwareCipher(MANAGEMENT_KEY))
    auth_key = piv.generate_key(PivKeyRef.AUTHENTICATION, algorithm)
    card_key = piv.generate_key(PivKeyRef.CARD_AUTHENTICATION, PivAlgorithm.ECC_P256)
    message = b"station nonce 0123456789abcdef"
    with pytest.raises(SecurityStatusNotSatisfiedError):
        piv.sign_sha256(PivKeyRef.AUTHENTICATION, algorithm, message)
    piv.verify_pin(PIV_DEFAULT_PIN)
    signature = piv.sign_sha256(PivKeyRef.AUTHENTICATION, algorithm, message)
    if isinstance(auth_key, rsa.RSAPublicKey):
        auth_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    else:
        auth_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    card.power_off()
    card.power_on()
    piv.select()
    with pytest.raises(SecurityStatusNotSatisfiedError):  # the power-off forgot the PIN
        piv.sign_sha256(PivKeyRef.AUTHENTICATION, algorithm, message)
    assert isinstance(card_key, ec.EllipticCurvePublicKey)
    card_key.verify(piv.sign_sha256(PivKeyRef.CARD_AUTHENTICATION, PivAlgorithm.ECC_P256,
                                    message), message, ec.ECDSA(hashes.SHA256()))


def test_wrong_algorithm_for_the_key_is_refused() -> None:
    _, _, piv = new_card()
    piv.authenticate_management(SoftwareCipher(MANAGEMENT_KEY))
    piv.generate_key(PivKeyRef.CARD_AUTHENTICATION, PivAlgorithm.ECC_P256)
    with pytest.raises(ApduError) as info:
        piv.general_authenticate(PivKeyRef.CARD_AUTHENTICATION, PivAlgorithm.RSA_2048,
                                 pkcs1_v15_block(b"x"))
    assert info.value.sw == 0x6A86


def test_certificate_goes_in_by_chaining_and_reads_back() -> None:
    card, _, _ = new_card()
    sent: list[bytes] = []
    inner = InProcessTransport(card)

    class Recording:
        def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]:
            sent.append(apdu)
            return inner.send_and_receive(apdu)

        def close(self) -> None:
            pass

    piv = PivSession(ApduChannel(Recording()))
    piv.select()
    piv.authenticate_management(SoftwareCipher(MANAGEMENT_KEY))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = self_signed(key)
    piv.put_certificate(PivKeyRef.AUTHENTICATION, cert)
    puts = [a for a in sent if a[1] == 0xDB]
    assert len(puts) >= 3 and all(a[0] == 0x10 for a in puts[:-1]) and puts[-1][0] == 0x00
    assert all(len(a) <= 5 + 255 for a in puts)  # short APDUs only
    assert piv.read_certificate(PivKeyRef.AUTHENTICATION) == cert


def test_put_data_needs_management_authentication() -> None:
    _, _, piv = new_card()
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(SecurityStatusNotSatisfiedError):
        piv.put_certificate(PivKeyRef.AUTHENTICATION, self_signed(key))


def test_raw_rsa_block_must_be_below_the_modulus() -> None:
    _, _, piv = new_card()
    piv.authenticate_management(SoftwareCipher(MANAGEMENT_KEY))
    piv.generate_key(PivKeyRef.CARD_AUTHENTICATION, PivAlgorithm.RSA_2048)
    with pytest.raises(ApduError) as info:
        piv.general_authenticate(PivKeyRef.CARD_AUTHENTICATION, PivAlgorithm.RSA_2048,
                                 b"\xff" * 256)
    assert info.value.sw == 0x6A80
    digest = hashlib.sha256(b"m").digest()
    assert len(pkcs1_v15_block(b"m")) == 256 and pkcs1_v15_block(b"m").endswith(digest)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(min_size=4, max_size=300), min_size=1, max_size=6))
def test_card_answers_any_bytes_with_a_status_word_and_keeps_its_rules(commands) -> None:  # type: ignore[no-untyped-def]
    """Whatever arrives, the card answers (SW last) and never raises; no PIN gets tries
    back without the right PIN, and nothing is generated without the management key."""
    card, _, _ = new_card()
    before = {ref: pin.tries_left for ref, pin in card.piv.pins.items()}
    for raw in commands:
        answer = card.process_apdu(raw)
        assert len(answer) >= 2
    after = {ref: pin.tries_left for ref, pin in card.piv.pins.items()}
    assert all(after[ref] <= before[ref] for ref in before)
    assert all(value is None for value in card.piv.keys.values())


@settings(max_examples=200, deadline=None)
@given(header=st.sampled_from([b"\x00\x87\x08\x9b", b"\x00\x87\x11\x9a", b"\x00\x87\x07\x9e",
                               b"\x00\x47\x00\x9a", b"\x00\xdb\x3f\xff", b"\x00\xcb\x3f\xff",
                               b"\x00\x20\x00\x80", b"\x00\x2c\x00\x80", b"\x00\x24\x00\x81"]),
       body=st.binary(max_size=80), chained=st.booleans())
def test_piv_commands_with_random_bodies(header: bytes, body: bytes, chained: bool) -> None:
    card, _, _ = new_card()
    if chained and body:
        first = bytes((header[0] | 0x10,)) + header[1:] + bytes((len(body[:10]),)) + body[:10]
        assert card.process_apdu(first)[-2:] == b"\x90\x00"
        body = body[10:]
    raw = header + (bytes((len(body),)) + body if body else b"")
    answer = card.process_apdu(raw)
    assert len(answer) >= 2
    assert all(value is None for value in card.piv.keys.values())


def test_bare_challenge_request_answers_random_bytes_and_grants_nothing() -> None:
    """OpenSC's C_GenerateRandom: ``00 87 00 9B 04 7C 02 81 00 00`` → ``7C 12 81 10 <16>``,
    fresh each time; it opens no administration (PUT DATA still 6982)."""
    card, _log, session = new_card()
    request = CommandApdu(0x00, 0x87, 0x00, 0x9B, bytes.fromhex("7C028100"), 256)
    first = parse_dynamic_auth(session.channel.send(request))
    second = parse_dynamic_auth(session.channel.send(request))
    assert set(first) == {0x81} and len(first[0x81]) == 16 and first != second
    assert not card.ram.admin
    _data, sw = session.channel.transceive(CommandApdu(
        0x00, 0xDB, 0x3F, 0xFF, bytes.fromhex("5C035FC1055300")))
    assert sw == 0x6982
