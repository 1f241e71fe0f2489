"""The host's counter session (tools/counter/card_session.py) on a card issued in-process
with the real token: it opens only on an issued card of the named serial, with that
card's transport keys derived in the token, and each of its operations changes what it
says on the card. New PIN values reach neither the log nor a repr."""

from __future__ import annotations

import dataclasses
import hashlib
import logging

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from cardlib.apps.base import ApplicationSession
from cardlib.apps.card_info import CardInfoApSession
from cardlib.apps.jpki import JpkiApSession, JpkiKey
from cardlib.channel import APDU_LOG_LEVEL, ApduChannel
from cardlib.constants import Aid, CardInfoFile, CommonFile, JpkiFile, LifeCycle
from cardlib.emulator.profiles import blank_resident_card, random_serial
from cardlib.emulator.resident_card_os import ResidentCardOs
from cardlib.errors import ConditionsNotSatisfiedError, InvalidPinError, SecureMessagingError
from cardlib.transport import InProcessTransport
from hsm.diversify import KeyPurpose, export_for_card_maker
from tools.counter.card_session import PIN_TARGETS, CounterSession
from tools.errors import IssuanceError
from tools.issuance.request import load_request
from tools.issuance.resident_card import issue_resident_card
from tools.registry import new_record_code
from tools.station.pins import Pin, ResidentCardPins

from ..conftest import ROOT

PINS = ResidentCardPins(Pin("1111"), Pin("2222"), Pin("SIGN3333"))
BASE = load_request(ROOT / "fixtures" / "requests" / "resident-yamada.json")
OLD = {"card-info": "1111", "jpki-auth": "2222", "jpki-sign": "SIGN3333", "juki": "1111",
       "common": "1111"}
NEW = {"card-info": "7531", "jpki-auth": "8642", "jpki-sign": "NEW2SIGN", "juki": "9753",
       "common": "3579"}


def blank_card(station, serial: str | None = None,  # type: ignore[no-untyped-def]
               keys_of: str | None = None) -> ResidentCardOs:
    serial = serial or random_serial()
    keys = export_for_card_maker(station.hsm, keys_of or serial)
    return ResidentCardOs(blank_resident_card(serial, {
        "enc": keys[KeyPurpose.ENC], "mac": keys[KeyPurpose.MAC], "dek": keys[KeyPurpose.DEK]}))


@pytest.fixture(scope="module")
def issued_text(station) -> str:  # type: ignore[no-untyped-def]
    card = blank_card(station)
    card.power_on()
    request = dataclasses.replace(BASE, resident_code=new_record_code())
    issue_resident_card(ApduChannel(InProcessTransport(card)), station.hsm, station.registry,
                        request, PINS)
    assert card.state.life_cycle == LifeCycle.SECURED
    return card.state.to_json()


def issued(text: str) -> tuple[ResidentCardOs, ApduChannel]:
    from cardlib.emulator.state import CardState

    card = ResidentCardOs(CardState.from_json(text))
    card.power_on()
    return card, ApduChannel(InProcessTransport(card))


def test_rewrite_file_and_record(station, issued_text: str) -> None:  # type: ignore[no-untyped-def]
    card, channel = issued(issued_text)
    serial = card.state.serial
    attributes = bytes.fromhex("FF2003DF2100")
    record = bytes.fromhex("011C") + serial.encode() + b"13101" + b"20360101"
    with CounterSession.open(channel, station.hsm, serial) as session:
        session.rewrite_file(Aid.CARD_INFO, CardInfoFile.ATTRIBUTES, attributes)
        session.rewrite_record(Aid.COMMON, CommonFile.CARD_INFO_RECORD, 1, record)
        with pytest.raises(ConditionsNotSatisfiedError):  # not in the counter set
            session.rewrite_file(Aid.CARD_INFO, CardInfoFile.CV_CERTIFICATE, b"\x7f\x21\x00")
    card.power_on()
    info = CardInfoApSession(channel)
    info.select()
    info.verify_pin(OLD["card-info"], CardInfoFile.PIN)
    assert info.read_physical(CardInfoFile.ATTRIBUTES) == attributes + b"\xff" * (
        len(card.state.apps[Aid.CARD_INFO.hex()].files["0002"].content) - len(attributes))
    common = ApplicationSession(channel, Aid.COMMON)
    common.select()
    common.select_ef(CommonFile.CARD_INFO_RECORD)
    assert common.read_record(1) == record


def test_regenerated_sign_key_signs(station, issued_text: str) -> None:  # type: ignore[no-untyped-def]
    card, channel = issued(issued_text)
    with CounterSession.open(channel, station.hsm, card.state.serial) as session:
        public_key = session.regenerate_key(Aid.JPKI, JpkiFile.SIGN_KEY)
    card.power_on()
    jpki = JpkiApSession(channel)
    jpki.select()
    jpki.verify_key_pin(JpkiKey.SIGN, OLD["jpki-sign"])
    signature = jpki.sign_digest(JpkiKey.SIGN, hashes.SHA256(), hashlib.sha256(b"m").digest())
    public_key.verify(signature, b"m", padding.PKCS1v15(), hashes.SHA256())


def test_reset_every_pin_and_nothing_reaches_the_log(  # type: ignore[no-untyped-def]
        station, issued_text: str, caplog: pytest.LogCaptureFixture) -> None:
    card, channel = issued(issued_text)
    caplog.set_level(APDU_LOG_LEVEL)
    with CounterSession.open(channel, station.hsm, card.state.serial) as session:
        for target in PIN_TARGETS:
            session.reset_pin(target, NEW[target])
        with pytest.raises(ValueError, match="unknown PIN"):
            session.reset_pin("collation-a", "123456789012")
        assert card.state.serial in repr(session)
    for value in NEW.values():
        assert value not in caplog.text and value.encode().hex() not in caplog.text.lower()
        assert value not in repr(session)
    card.power_on()
    for target, (aid, fid) in PIN_TARGETS.items():
        ap = ApplicationSession(channel, aid)
        ap.select()
        with pytest.raises(InvalidPinError):
            ap.verify_pin(OLD[target], fid)
        ap.verify_pin(NEW[target], fid)


def test_a_wrong_sign_pin_format_is_refused_and_the_old_one_stays(  # type: ignore[no-untyped-def]
        station, issued_text: str) -> None:
    from cardlib.errors import ApduError

    card, channel = issued(issued_text)
    with CounterSession.open(channel, station.hsm, card.state.serial) as session, \
            pytest.raises(ApduError) as info:
        session.reset_pin("jpki-sign", "lower1")
    assert info.value.sw == 0x6A80
    card.power_on()
    jpki = JpkiApSession(channel)
    jpki.select()
    jpki.verify_key_pin(JpkiKey.SIGN, OLD["jpki-sign"])


def test_a_blank_card_is_refused(station) -> None:  # type: ignore[no-untyped-def]
    card = blank_card(station)
    card.power_on()
    with pytest.raises(IssuanceError, match=f"card {card.state.serial} .*OP_READY"), \
            CounterSession.open(ApduChannel(InProcessTransport(card)), station.hsm,
                                card.state.serial):
        pass
    assert card.sm.level == 0


def test_another_serial_is_refused(station, issued_text: str) -> None:  # type: ignore[no-untyped-def]
    card, channel = issued(issued_text)
    other = random_serial()
    with pytest.raises(IssuanceError, match=f"{card.state.serial}, not {other}"), \
            CounterSession.open(channel, station.hsm, other):
        pass


def test_a_card_with_another_cards_keys_does_not_open(station) -> None:  # type: ignore[no-untyped-def]
    card = blank_card(station, keys_of=random_serial())  # a counterfeit of the serial
    card.state.life_cycle = LifeCycle.SECURED
    card.power_on()
    with pytest.raises(SecureMessagingError, match="card cryptogram"), \
            CounterSession.open(ApduChannel(InProcessTransport(card)), station.hsm,
                                card.state.serial):
        pass
    assert card.sm.level == 0


def test_logging_of_the_counter_session_names_no_secret(  # type: ignore[no-untyped-def]
        station, issued_text: str, caplog: pytest.LogCaptureFixture) -> None:
    card, channel = issued(issued_text)
    caplog.set_level(logging.INFO, logger="tools.counter.card_session")
    with CounterSession.open(channel, station.hsm, card.state.serial) as session:
        session.reset_pin("card-info", "2580")
    assert "PIN card-info reset" in caplog.text and "2580" not in caplog.text
