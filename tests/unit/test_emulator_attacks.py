"""Attacks on the emulated resident card's rules (real-card.md §2–§10): each tries to
get past an access rule, a key's purpose, a blocked key or the retry counter, and fails."""

from __future__ import annotations

import json

import pytest

from cardlib.apdu import CommandApdu
from cardlib.constants import Aid
from cardlib.emulator.resident_card_os import ResidentCardOs
from cardlib.emulator.state import CardState
from tests.helpers import card_channel, personalising, raw
from tests.unit.test_emulator_real_card import DOB, PIN, A, B, ef, issued_text, sel, verify

__all__ = ["issued_text"]


@pytest.fixture
def card(issued_text: str) -> ResidentCardOs:
    return card_channel(ResidentCardOs(CardState.from_json(issued_text)))[0]


def test_blocked_0012_cannot_be_set_even_in_personalisation() -> None:
    card, plain = card_channel()
    ch = personalising(plain)
    ch.send(CommandApdu(0x00, 0xA4, 0x04, 0x0C, Aid.CARD_INFO))
    assert ch.transceive(CommandApdu(0x00, 0x24, 0x01, 0x92, b"1234"))[1] == 0x6984
    assert card.state.apps[Aid.CARD_INFO.hex()].pins["0012"].tries_left == 0


def test_mf_atr_object_cannot_be_put() -> None:
    _card, plain = card_channel()
    ch = personalising(plain)
    assert ch.transceive(CommandApdu(0x00, 0xDA, 0x5F, 0x51, b"\x3b"))[1] == 0x6A86
    assert ch.transceive(CommandApdu(0x00, 0xDA, 0x12, 0x34, b"\x00"))[1] == 0x6A86


def test_presence_key_is_not_reachable_from_other_aps_or_commands(card: ResidentCardOs) -> None:
    digest_info = "3031300d060960864801650304020105000420" + "00" * 32
    sel(card, "jpki")  # no default key in the JPKI AP: no credential-free signature
    assert raw(card, "802A000033" + digest_info + "00") == (b"", 0x6A86)
    sel(card, "common")
    assert raw(card, "802A000033" + digest_info + "00") == (b"", 0x6A86)
    sel(card, "info")  # the presence key by SFI through another command
    assert raw(card, "008800930401020304" + "00") == (b"", 0x6985)
    assert raw(card, "802A009333" + digest_info + "00") == (b"", 0x6A86)


def test_jpki_auth_key_never_answers_internal_authenticate(card: ResidentCardOs) -> None:
    sel(card, "jpki")
    assert raw(card, "008800970401020304" + "00") == (b"", 0x6982)
    assert verify(card, "98", "1234") == 0x9000
    assert raw(card, "008800970401020304" + "00") == (b"", 0x6982)


def test_sfi_reads_respect_the_access_rule(card: ResidentCardOs) -> None:
    sel(card, "info")
    assert verify(card, "94", A) == 0x9000
    assert raw(card, "00B0820000") == (b"", 0x6982)  # A does not open 0002, by SFI either
    assert ef(card, "0002") == 0x9000
    assert raw(card, "00B0000000") == (b"", 0x6982)
    sel(card, "surface")  # the card-info AP's status does not carry over
    assert raw(card, "00B0850000") == (b"", 0x6982)


def test_overlong_secret_spends_no_try(card: ResidentCardOs) -> None:
    sel(card, "info")
    assert raw(card, "0020009111" + "31" * 17) == (b"", 0x6700)
    assert raw(card, "00200091") == (b"", 0x63C3)


def test_failed_state_write_during_change_key_changes_nothing(card: ResidentCardOs) -> None:
    sel(card, "common")
    assert verify(card, "9C", PIN) == 0x9000
    before = card.state.apps[Aid.COMMON.hex()].pins["001C"].digest

    def disk_full(_state) -> None:  # type: ignore[no-untyped-def]
        raise OSError(28, "No space left on device")

    card._persist = disk_full
    assert ef(card, "001C") == 0x9000
    assert raw(card, "8032008004" + b"0000".hex()) == (b"", 0x6581)
    card._persist = lambda _state: None
    assert card.state.apps[Aid.COMMON.hex()].pins["001C"].digest == before
    assert verify(card, "9C", "0000") == 0x63C2  # the new value never took effect
    assert verify(card, "9C", PIN) == 0x9000


def test_old_state_files_are_refused_with_a_clear_error(issued_text: str) -> None:
    raw_state = json.loads(issued_text)
    raw_state["version"] = 1
    with pytest.raises(ValueError, match="older emulator"):
        CardState.from_json(json.dumps(raw_state))


def test_a_command_on_another_channel_does_not_desynchronise_the_sm_session(
        card: ResidentCardOs) -> None:
    """Found by fuzzing: the card answers CLA 0B (channel 3) with 6881 before its session
    sees it, so the host must not count it either (it goes out as is)."""
    from cardlib.apps.base import ApplicationSession
    from cardlib.text_sm import open_text_sm
    from tests.unit.test_emulator_real_card import NUMBER_FILE, public

    channel = card_channel(card)[1]
    sel(card, "info")
    assert verify(card, "91", PIN) == 0x9000
    secure = open_text_sm(channel, public(card, "info", "0006"))
    assert secure.transceive(CommandApdu(0x03, 0xB0, 0x00, 0x00, ne=16)) == (b"", 0x6881)
    session = ApplicationSession(secure, Aid.CARD_INFO)
    session.select_ef(0x0001)
    assert session.read_binary(0, 65536) == NUMBER_FILE + b"\xff\xff"


@pytest.mark.parametrize(("ap", "p2", "secret"), [("info", "94", A), ("info", "95", B),
                                                  ("surface", "91", DOB), ("surface", "92", B),
                                                  ("surface", "93", A)])
def test_a_verified_collation_key_cannot_be_re_keyed_after_issuance(  # type: ignore[no-untyped-def]
        card: ResidentCardOs, ap: str, p2: str, secret: str) -> None:
    """Found in review: whoever had presented 照合番号A/B (or the birth-date key) could
    CHANGE REFERENCE DATA it to a value of their own, cutting the card from its printed
    face. Refused (6985); the old value still opens, with its tries unspent."""
    sel(card, ap)
    assert verify(card, p2, secret) == 0x9000
    new = "1" * len(secret)
    assert raw(card, f"002401{p2}{len(new):02X}{new.encode().hex()}")[1] == 0x6985
    assert verify(card, p2, new) != 0x9000 and verify(card, p2, secret) == 0x9000
