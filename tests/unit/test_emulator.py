"""The card OS rules, through the in-process transport and the host session classes."""

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from cardlib.apdu import CommandApdu
from cardlib.apps.base import WritableApSession
from cardlib.apps.card_info import CardInfoApSession
from cardlib.apps.common import CommonApSession
from cardlib.apps.issuer import IssuerSession
from cardlib.constants import Aid, CardInfoFile, CommonFile, LifeCycle
from cardlib.emulator.profiles import blank_resident_card
from cardlib.emulator.resident_card_os import ResidentCardOs
from cardlib.emulator.resident_profile import CARD_INFO_SIZES
from cardlib.emulator.state import StateFile
from cardlib.errors import (
    ConditionsNotSatisfiedError,
    EndOfFileError,
    InvalidPinError,
    SecurityStatusNotSatisfiedError,
)
from cardlib.records import encode_four_info
from tests.helpers import (
    SAMPLE_INFO,
    TRANSPORT_KEYS,
    card_channel,
    exhaust_card_info_pin,
    personalising,
    raw,
)

PIN = "2468"


def personalise(plain, *, lock: bool = True):  # type: ignore[no-untyped-def]
    channel = personalising(plain)
    common = WritableApSession(channel, Aid.COMMON)
    common.select()
    public_key = common.generate_rsa_key(CommonFile.AUTH_KEY)
    info = WritableApSession(channel, Aid.CARD_INFO)
    info.select()
    info.write_file(CardInfoFile.ATTRIBUTES, encode_four_info(SAMPLE_INFO))
    info.set_pin(CardInfoFile.PIN, PIN)
    if lock:
        issuer = IssuerSession(channel)
        issuer.select()
        issuer.lock()
    return public_key


@pytest.fixture(scope="module")
def issued_state():  # type: ignore[no-untyped-def]
    card, channel = card_channel()
    public_key = personalise(channel)
    return card.state.to_json(), public_key


@pytest.fixture
def issued(issued_state):  # type: ignore[no-untyped-def]
    from cardlib.emulator.state import CardState

    text, public_key = issued_state
    card, channel = card_channel(ResidentCardOs(CardState.from_json(text)))
    return card, channel, public_key


def test_blank_card_reports_serial_and_life_cycle() -> None:
    card, channel = card_channel()
    issuer = IssuerSession(channel)
    issuer.select()
    info = issuer.read_info()
    assert info.card_serial == card.state.serial and info.life_cycle == LifeCycle.OP_READY


def test_pin_tries_decrement_then_block(issued) -> None:  # type: ignore[no-untyped-def]
    _card, channel, _ = issued
    session = CardInfoApSession(channel)
    session.select()
    exhaust_card_info_pin(session, PIN)


def test_empty_verify_spends_no_try_and_answers_the_counter_even_after_login(issued) -> None:  # type: ignore[no-untyped-def]
    """An empty VERIFY is a retry query: 63Cx before and after a successful VERIFY (OpenSC's
    jpki driver queries after its login and needs SW1 63, RC §7.2 [C])."""
    card, channel, _ = issued
    session = CardInfoApSession(channel)
    session.select()
    with pytest.raises(InvalidPinError):
        session.verify_pin("1111")
    for _ in range(5):
        status = session.pin_status()
        assert status.tries_left == 2 and not status.verified
    session.verify_pin(PIN)
    assert session.pin_status().tries_left == 3
    assert "0011" in card.ram.verified
    assert card.state.apps[Aid.CARD_INFO.hex()].pins["0011"].tries_left == 3


def test_retry_counter_is_persisted_before_the_comparison(issued) -> None:  # type: ignore[no-untyped-def]
    card, channel, _ = issued
    saved: list[int] = []
    card._persist = lambda state: saved.append(state.apps[Aid.CARD_INFO.hex()].pins["0011"].tries_left)
    session = CardInfoApSession(channel)
    session.select()
    session.verify_pin(PIN)
    assert saved == [2, 3]  # decremented and saved first, restored after success
    saved.clear()
    with pytest.raises(InvalidPinError):
        session.verify_pin("9999")
    assert saved == [2]


def test_protected_files_need_the_pin_kept_by_reset_lost_by_power_off(issued) -> None:  # type: ignore[no-untyped-def]
    """real-card.md §2.1: a verified PIN survives a warm reset and a re-SELECT of its AP;
    a power-off or selecting another AP clears it."""
    card, channel, _ = issued
    session = CardInfoApSession(channel)
    session.select()
    with pytest.raises(SecurityStatusNotSatisfiedError):
        session.read_four_info()
    session.verify_pin(PIN)
    assert session.read_four_info() == SAMPLE_INFO
    card.reset()  # warm reset (SCARD_RESET_CARD): still verified
    session.select()
    assert session.read_four_info() == SAMPLE_INFO
    session.select()  # the same AP again: still verified
    assert session.read_four_info() == SAMPLE_INFO
    card.power_off()  # SCARD_UNPOWER_CARD
    card.power_on()
    session.select()
    with pytest.raises(SecurityStatusNotSatisfiedError):
        session.read_four_info()
    assert "0011" not in card.ram.verified
    session.verify_pin(PIN)
    CommonApSession(channel).select()  # leaving the AP drops its security status
    session.select()
    with pytest.raises(SecurityStatusNotSatisfiedError):
        session.read_four_info()
    session.verify_pin(PIN)
    card.reset()
    CommonApSession(channel).select()  # ... also across a reset
    session.select()
    with pytest.raises(SecurityStatusNotSatisfiedError):
        session.read_four_info()
    assert card.state.apps[Aid.CARD_INFO.hex()].pins["0011"].tries_left == 3


def test_read_binary_past_end_is_6b00(issued) -> None:  # type: ignore[no-untyped-def]
    _card, channel, _ = issued
    session = CardInfoApSession(channel)
    session.select()
    session.verify_pin(PIN)
    session.select_ef(CardInfoFile.ATTRIBUTES)
    record = encode_four_info(SAMPLE_INFO)
    size = CARD_INFO_SIZES[CardInfoFile.ATTRIBUTES]  # allocated: the object, then FF filler
    assert session.read_binary(0, len(record) + 2) == record + b"\xff\xff"
    assert session.read_binary(size - 3, 255) == b"\xff" * 3  # Le past the end: the rest
    with pytest.raises(EndOfFileError):
        session.read_binary(size, 1)


def test_get_challenge_is_fresh_and_single_use(issued) -> None:  # type: ignore[no-untyped-def]
    card, _channel, _ = issued
    first, sw = raw(card, "0084000008")
    assert sw == 0x9000 and len(first) == 8 and card.ram.challenge == first
    second, _ = raw(card, "0084000008")
    assert second != first and card.ram.challenge == second
    _, sw = raw(card, "00a4040c0a" + Aid.COMMON.hex())  # any command consumes it
    assert sw == 0x9000 and card.ram.challenge is None
    raw(card, "0084000008")
    _, sw = raw(card, "00ff0000")  # even a failing command consumes it
    assert sw == 0x6D00 and card.ram.challenge is None
    for length in (1, 33, 255):  # every length 1-256 honoured exactly (real-card.md §2.1)
        data, sw = raw(card, f"00840000{length:02x}")
        assert sw == 0x9000 and len(data) == length
    data, sw = raw(card, "0084000000")
    assert sw == 0x9000 and len(data) == 256
    assert raw(card, "0084000000000100") == (b"", 0x6985)  # extended Le refused
    assert raw(card, "00840000000000") == (b"", 0x6985)


def test_internal_authenticate_signs_the_challenge(issued) -> None:  # type: ignore[no-untyped-def]
    _card, channel, public_key = issued
    session = CommonApSession(channel)
    session.select()
    challenge = bytes(range(32))
    signature = session.internal_authenticate(challenge)
    public_key.verify(signature, challenge, padding.PKCS1v15(), hashes.SHA256())


def test_locked_card_refuses_personalisation(issued) -> None:  # type: ignore[no-untyped-def]
    _card, plain, _ = issued
    info = WritableApSession(plain, Aid.CARD_INFO)
    info.select()
    with pytest.raises(SecurityStatusNotSatisfiedError):
        info.set_pin(CardInfoFile.PIN, "0000")  # after issuance only after VERIFY
    channel = personalising(plain)  # even with the transport keys: the card is locked
    with pytest.raises(ConditionsNotSatisfiedError):
        IssuerSession(channel).lock()
    common = WritableApSession(channel, Aid.COMMON)
    common.select()  # the counter session spans the APs but admits only the counter set
    with pytest.raises(ConditionsNotSatisfiedError):
        common.write_file(CommonFile.CARD_INFO_RECORD, b"\x01\x00")
    with pytest.raises(ConditionsNotSatisfiedError):
        common.generate_rsa_key(CommonFile.AUTH_KEY)


def test_blank_card_refuses_personalisation_outside_scp03() -> None:
    _card, plain = card_channel()
    common = WritableApSession(plain, Aid.COMMON)
    common.select()
    with pytest.raises(SecurityStatusNotSatisfiedError):
        common.write_file(CommonFile.CARD_INFO_RECORD, b"\x01\x00")
    with pytest.raises(SecurityStatusNotSatisfiedError):
        common.generate_rsa_key(CommonFile.AUTH_KEY)
    issuer = IssuerSession(plain)
    issuer.select()
    with pytest.raises(SecurityStatusNotSatisfiedError):
        issuer.lock()


def test_another_cards_transport_keys_never_open_it() -> None:
    from cardlib.errors import SecureMessagingError

    _card, plain = card_channel()
    other = {"enc": b"\x44" * 16, "mac": b"\x55" * 16, "dek": b"\x66" * 16}
    with pytest.raises(SecureMessagingError, match="card cryptogram"):
        personalising(plain, other)


def test_wipe_returns_a_card_to_blank(issued) -> None:  # type: ignore[no-untyped-def]
    card, plain, _ = issued
    serial = card.state.serial
    issuer = IssuerSession(plain)
    issuer.select()
    with pytest.raises(SecurityStatusNotSatisfiedError):
        issuer.channel.send(CommandApdu(0x80, 0xF0, 0x80, 0x01))  # not in the clear
    IssuerSession(personalising(plain)).wipe()
    assert card.state.life_cycle == LifeCycle.OP_READY and card.state.serial == serial
    assert card.state.apps[Aid.COMMON.hex()].keys["0019"] is None
    assert card.state.apps[Aid.ISSUER_SECURITY_DOMAIN.hex()].scp is not None
    personalise(plain)  # and it can be issued again
    assert card.state.life_cycle == LifeCycle.SECURED


def test_change_pin_after_verify(issued) -> None:  # type: ignore[no-untyped-def]
    _card, channel, _ = issued
    session = WritableApSession(channel, Aid.CARD_INFO)
    session.select()
    session.verify_pin(PIN, CardInfoFile.PIN)
    session.set_pin(CardInfoFile.PIN, "1357")
    with pytest.raises(InvalidPinError):
        session.verify_pin(PIN, CardInfoFile.PIN)
    session.verify_pin("1357", CardInfoFile.PIN)


def test_key_generation_response_is_chained_with_61xx() -> None:
    _card, plain = card_channel()
    sent: list[bytes] = []
    inner = plain.transport.send_and_receive
    plain.transport.send_and_receive = lambda apdu: (sent.append(apdu), inner(apdu))[1]  # type: ignore[method-assign]
    common = WritableApSession(personalising(plain), Aid.COMMON)
    common.select()
    key = common.generate_rsa_key(CommonFile.AUTH_KEY)
    assert key.key_size == 2048
    assert any(apdu[1] == 0xC0 for apdu in sent)  # the protected answer came in 61xx parts


def test_malformed_apdu_and_unknown_instruction() -> None:
    card, _ = card_channel()
    assert raw(card, "00a4")[1] == 0x6700
    assert raw(card, "00a404000500")[1] == 0x6700
    assert raw(card, "00ee0000")[1] == 0x6D00
    assert raw(card, "a0a4040c02d392")[1] == 0x6E00
    assert raw(card, "84a4040c02d392")[1] == 0x6982  # secure messaging without a session


def test_state_survives_restart_and_is_written_atomically(tmp_path: Path) -> None:
    store = StateFile(tmp_path / "card.json")
    store.save(blank_resident_card(transport_keys=TRANSPORT_KEYS))
    card = ResidentCardOs(store.load(), store.save)
    card, channel = card_channel(card)
    personalise(channel)
    session = CardInfoApSession(channel)
    session.select()
    with pytest.raises(InvalidPinError):
        session.verify_pin("0000")
    reloaded, channel2 = card_channel(ResidentCardOs(store.load(), store.save))
    session2 = CardInfoApSession(channel2)
    session2.select()
    assert session2.pin_status().tries_left == 2
    assert reloaded.state.life_cycle == LifeCycle.SECURED
    assert [p.name for p in tmp_path.iterdir()] == ["card.json"]  # no temp files left
    assert oct((tmp_path / "card.json").stat().st_mode & 0o777) == "0o600"
    assert PIN not in (tmp_path / "card.json").read_text()


def test_failed_state_write_fails_closed_before_the_pin_comparison(issued) -> None:  # type: ignore[no-untyped-def]
    card, _channel, _ = issued

    def disk_full(_state) -> None:  # type: ignore[no-untyped-def]
        raise OSError(28, "No space left on device")

    card._persist = disk_full
    raw(card, "00a4040c0a" + Aid.CARD_INFO.hex())
    raw(card, "00a4020c020011")
    _, sw = raw(card, "0020008004" + PIN.encode().hex())
    assert sw == 0x6581  # memory failure: the right PIN is not accepted without a durable count
    assert "0011" not in card.ram.verified
