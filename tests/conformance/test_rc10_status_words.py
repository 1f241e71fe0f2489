"""RC §10: each status word of the real card, in the situation RC reports it."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import pytest

from . import raw_sm
from .conftest import CARD_INFO_PIN, JPKI_AUTH_PIN
from .raw_reader import RawCard, read_physical, read_tlv, rsa_key, select_aid, select_ef, verify
from .rc import CARD_INFO, COMMON, JPKI, JUKI, SURFACE, empty_verify, sw_of, verify_sw

SET_SESSION_KEY_JUNK = "80AE0000000100" + "01" * 256


def _in(aid: bytes, apdu: str) -> Callable[[RawCard], int]:
    def run(card: RawCard) -> int:
        select_aid(card, aid)
        return sw_of(card, apdu)
    return run


def _session(card: RawCard) -> bytes:
    select_aid(card, CARD_INFO)
    verify(card, 0x0011, CARD_INFO_PIN)
    content = read_physical(card, 0x0006)
    key = rsa_key(read_tlv(content, 0).value(content))
    seed = secrets.token_bytes(32)
    assert card.transmit(raw_sm.set_session_key_apdu(key, seed))[1] == 0x9000
    return seed[:16]


def _set_session_key_with_pin(card: RawCard) -> int:
    select_aid(card, CARD_INFO)
    verify(card, 0x0011, CARD_INFO_PIN)
    content = read_physical(card, 0x0006)
    key = rsa_key(read_tlv(content, 0).value(content))
    return card.transmit(raw_sm.set_session_key_apdu(key, secrets.token_bytes(32)))[1]


def _wrong_session_key(card: RawCard) -> int:
    from cryptography.hazmat.primitives.asymmetric import rsa

    select_aid(card, CARD_INFO)
    verify(card, 0x0011, CARD_INFO_PIN)
    content = read_physical(card, 0x0006)
    card_modulus = rsa_key(read_tlv(content, 0).value(content)).public_numbers().n
    other = rsa.generate_private_key(65537, 2048).public_key()
    while True:  # a cryptogram below the card's modulus (else 6F00, RC §4.7)
        apdu = raw_sm.set_session_key_apdu(other, secrets.token_bytes(32))
        if int.from_bytes(apdu[7:], "big") < card_modulus:
            return card.transmit(apdu)[1]


def _cla_0c(card: RawCard) -> int:
    key = _session(card)
    apdu = bytearray(raw_sm.sm_select_ef(key, 1, 0x0001))
    apdu[0] = 0x0C
    return sw_of(card, bytes(apdu))


def _wrong_counter(card: RawCard) -> int:
    key = _session(card)
    return sw_of(card, raw_sm.sm_select_ef(key, 2, 0x0001))


def _after_destroyed(card: RawCard) -> int:
    key = _session(card)
    assert sw_of(card, raw_sm.sm_select_ef(key, 7, 0x0001)) == 0x6988
    return sw_of(card, raw_sm.sm_select_ef(key, 2, 0x0001))


def _two_objects(card: RawCard) -> int:
    key = _session(card)
    data = raw_sm.do86(key, 1, b"\x00\x01")
    return sw_of(card, bytes([0x08, 0xA4, 0x02, 0x0C, 2 * len(data)]) + data + data)


def _exhausted(card: RawCard) -> list[int]:
    """The surface birth-date key (10 tries, ours): the 10th wrong attempt 63C0, then 6984."""
    select_aid(card, SURFACE)
    answers = [verify_sw(card, 0x0011, "000000") for _ in range(11)]
    return answers


def _read_past_end(card: RawCard) -> int:
    select_aid(card, CARD_INFO)
    select_ef(card, 0x0004)
    return sw_of(card, "00 B0 7F 00 01")


def _internal_auth_behind_pin(card: RawCard) -> int:
    select_aid(card, JPKI)
    return sw_of(card, "00 88 00 97 04 01020304 00")


SITUATIONS: dict[str, tuple[int | tuple[int, ...], Callable[[RawCard], int]]] = {
    "9000 SET SESSION KEY with the PIN": (0x9000, _set_session_key_with_pin),
    "63Cx empty VERIFY": (0x63C3, lambda c: empty_verify(c, CARD_INFO, 0x0011)),
    "63C0 empty VERIFY of 0012": (0x63C0, lambda c: empty_verify(c, CARD_INFO, 0x0012)),
    "6700 80 FC 00 00": (0x6700, _in(JPKI, "80FC0000")),
    "6700 GET DATA 00F8 short Le": (0x6700, lambda c: sw_of(c, "00CA00F800")),
    "66F1 common AP 80 AE": (0x66F1, _in(COMMON, SET_SESSION_KEY_JUNK)),
    "66F1 surface AP 80 AE": (0x66F1, _in(SURFACE, SET_SESSION_KEY_JUNK)),
    "6881 logical channel 3": (0x6881, lambda c: sw_of(c, "03A4040C0AD3921000310001010408")),
    "6882 SELECT CLA 08 no session": (0x6882, _in(CARD_INFO, "08A4020C020001")),
    "6981 MF EF 001E": (0x6981, lambda c: (sw_of(c, "00A4020C02001E"), sw_of(c, "00B0000001"))[1]),
    "6982 80 AE without the PIN": (0x6982, _in(CARD_INFO, SET_SESSION_KEY_JUNK)),
    "6982 JPKI 80 AE": (0x6982, _in(JPKI, SET_SESSION_KEY_JUNK)),
    "6982 住基 80 AE": (0x6982, _in(JUKI, SET_SESSION_KEY_JUNK)),
    "6982 INTERNAL AUTHENTICATE behind a PIN": (0x6982, _internal_auth_behind_pin),
    "6984 VERIFY of 0012": (0x6984, lambda c: (select_aid(c, CARD_INFO), verify_sw(c, 0x0012, "1234"))[1]),
    "6985 GET CHALLENGE extended Le": (0x6985, lambda c: sw_of(c, "0084000000 0010")),
    "6987 CLA 0C in the session": (0x6987, _cla_0c),
    "6988 wrong counter": (0x6988, _wrong_counter),
    "6988 two data objects": (0x6988, _two_objects),
    "69FC after the session was destroyed": (0x69FC, _after_destroyed),
    "69FC CLA 08 READ BINARY in JPKI": (0x69FC, _in(JPKI, "08B0000000")),
    "69FC CLA 08 VERIFY outside a session": (0x69FC, _in(CARD_INFO, "0820009104 31323334")),
    "6A80 SET SESSION KEY under a wrong key": (0x6A80, _wrong_session_key),
    "6A82 SELECT 2F10": (0x6A82, lambda c: sw_of(c, "00A4020C022F10")),
    "6A86 00 A4 00 00 after cold reset": (0x6A86, lambda c: sw_of(c, "00A40000")),
    "6A86 JPKI 80 2A P1 06": (0x6A86, _in(JPKI, "802A0697 0101 00")),
    "6A88 GET DATA 00F0 inside an AP": (0x6A88, _in(CARD_INFO, "00CA00F000")),
    "6B00 READ BINARY offset past the end": ((0x6B00, 0x6282), _read_past_end),
    "6F00 cryptogram >= modulus": (0x6F00, lambda c: (select_aid(c, CARD_INFO),
                                                      verify(c, 0x0011, CARD_INFO_PIN),
                                                      sw_of(c, "80AE0000000100" + "FF" * 256))[2]),
}


@pytest.mark.parametrize("situation", list(SITUATIONS))
def test_status_word_in_its_situation(card: RawCard, situation: str) -> None:
    expected, run = SITUATIONS[situation]
    allowed = expected if isinstance(expected, tuple) else (expected,)
    assert run(card) in allowed, situation


def test_no_ap_answers_6d00_to_80_ae(card: RawCard) -> None:
    for aid in (CARD_INFO, SURFACE, JPKI, COMMON, JUKI):
        select_aid(card, aid)
        assert sw_of(card, SET_SESSION_KEY_JUNK) != 0x6D00


def test_63cx_empty_verify_after_a_successful_verify(card: RawCard) -> None:
    """RC §7.2 [C]: OpenSC's jpki driver takes the retry query's SW1 = 63 as required
    (sw2 & 0F = tries) and asks it while logged in (C_GetSessionInfo); it works on real
    cards, so the real card answers 63Cx there too."""
    select_aid(card, JPKI)
    assert verify_sw(card, 0x0018, JPKI_AUTH_PIN) == 0x9000
    assert sw_of(card, "00 20 00 80") == 0x63C3


def test_63c0_on_the_exhausting_attempt_then_6984(card: RawCard) -> None:
    answers = _exhausted(card)
    assert answers == [0x63C0 + n for n in range(9, -1, -1)] + [0x6984]
    assert empty_verify(card, SURFACE, 0x0011) == 0x63C0
