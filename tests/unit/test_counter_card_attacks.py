"""Attacks on the counter session of an issued card: every counter command outside the
issuer domain's level-33 session answers 6982 (in the clear, under the card-info AP's
secure messaging, in the 住基AP's own session, at a lower level, after an EXTERNAL
AUTHENTICATE with another card's keys); inside it everything but the counter set answers
6985; random APDUs inside it never touch an EF, record, key or PIN outside the set."""

from __future__ import annotations

import secrets

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cardlib.apdu import CommandApdu, split_response
from cardlib.apps.base import open_secure
from cardlib.apps.issuer import IssuerSession
from cardlib.apps.resident_registry import open_registry
from cardlib.channel import ApduChannel
from cardlib.constants import Aid, LifeCycle
from cardlib.emulator import counter_rules
from cardlib.emulator.resident_card_os import ResidentCardOs
from cardlib.errors import CardError, SecurityStatusNotSatisfiedError
from cardlib.scp03.host import Scp03Transport
from cardlib.scp03.keys import HOST_CRYPTOGRAM, StaticKeyPrfs, cryptogram, session_keys
from cardlib.scp03.wrapping import SecureSession, SecurityLevel
from cardlib.text_sm import TextSmTransport, set_session_key
from tests.helpers import TRANSPORT_KEYS, raw
from tests.unit.counter_card_fixtures import (
    AIDS,
    PIN,
    REGISTRY,
    Key,
    changed,
    counter,
    fresh,
    issued_counter_text,
    pooled_rsa_keys,
    select,
    send,
    snapshot,
)

__all__ = ["issued_counter_text", "pooled_rsa_keys"]

# One command of each kind of the counter set, with a target the set lists:
# (AP, EF selected first, CLA INS P1 P2, data)
COUNTER_COMMANDS = [
    ("info", 0x0002, (0x00, 0x0E, 0x00, 0x00), b""),
    ("info", 0x0002, (0x00, 0xD6, 0x00, 0x00), b"\xff\x20\x00"),
    ("jpki", 0x000A, (0x00, 0xD6, 0x00, 0x00), b"\x30\x00"),
    ("common", 0x0001, (0x00, 0xDC, 0x01, 0x04), b"\x01\x00"),
    ("jpki", 0x001A, (0x00, 0x46, 0x00, 0x80), b""),
    ("jpki", 0x0018, (0x00, 0x2C, 0x02, 0x80), b"5555"),
    ("info", 0x0011, (0x00, 0x2C, 0x02, 0x80), b"5555"),
    ("juki", 0x001C, (0x00, 0x2C, 0x02, 0x80), b"5555"),
]
IDS = [f"{ap}-{fid:04X}-{head[1]:02X}" for ap, fid, head, _ in COUNTER_COMMANDS]


def _apdu(head: tuple[int, int, int, int], data: bytes) -> CommandApdu:
    return CommandApdu(*head, data, 256 if head[1] == 0x46 else None)


def _all_refused(card: ResidentCardOs, channel: ApduChannel, expected: int) -> None:
    before = snapshot(card)
    for ap, fid, head, data in COUNTER_COMMANDS:
        channel.transceive(CommandApdu(0x00, 0xA4, 0x04, 0x0C, AIDS[ap]))
        channel.transceive(CommandApdu(0x00, 0xA4, 0x02, 0x0C, fid.to_bytes(2, "big")))
        assert channel.transceive(_apdu(head, data))[1] == expected, (ap, fid, head)
    assert changed(before, card) == set()


def test_in_the_clear_6982(issued_counter_text: str) -> None:
    card, plain = fresh(issued_counter_text)
    _all_refused(card, plain, 0x6982)
    select(plain, "jpki")  # a verified PIN opens nothing of the set either
    assert raw(card, "0020009804" + b"1234".hex())[1] == 0x9000
    assert raw(card, "002C029804" + b"5555".hex())[1] == 0x6982


def test_under_the_card_info_secure_messaging_6982(issued_counter_text: str) -> None:
    card, plain = fresh(issued_counter_text)
    select(plain, "info")
    assert raw(card, "0020009104" + PIN.encode().hex())[1] == 0x9000
    pem = card.state.apps[Aid.CARD_INFO.hex()].keys["0006"]
    public_key = serialization.load_pem_private_key(pem.encode(), None).public_key()
    seed = secrets.token_bytes(32)
    assert set_session_key(plain, public_key, seed) == 0x9000
    before = snapshot(card)
    for counter_n, (fid, head, data) in enumerate([
            (0x0002, (0x00, 0x0E, 0x00, 0x00), b""),
            (0x0002, (0x00, 0xD6, 0x00, 0x00), b"\xff\x20\x00"),
            (0x0011, (0x00, 0x2C, 0x02, 0x91), b"5555"),
            (0x0013, (0x00, 0x46, 0x00, 0x93), b"")], start=1):
        raw(card, f"00A4020C02{fid:04X}")  # in the clear: SELECT EF stays in the session
        secure = TextSmTransport._protect(seed[:16], counter_n, CommandApdu(*head, data))
        assert split_response(card.process_apdu(secure.encode()))[1] == 0x6982
    assert changed(before, card) == set()


def test_in_the_registry_aps_own_session_6982(issued_counter_text: str) -> None:
    card, plain = fresh(issued_counter_text)
    registry = open_registry(plain, StaticKeyPrfs.from_software_keys(REGISTRY["enc"],
                                                                     REGISTRY["mac"]))
    before = snapshot(card)
    for fid, head, data in ((0x001C, (0x00, 0x2C, 0x02, 0x80), b"5555"),
                            (0x0003, (0x00, 0x0E, 0x00, 0x00), b""),
                            (0x0003, (0x00, 0xD6, 0x00, 0x00), b"\x00"),
                            (0x0002, (0x00, 0xDC, 0x01, 0x04), bytes(16))):
        registry.channel.transceive(CommandApdu(0x00, 0xA4, 0x02, 0x0C, fid.to_bytes(2, "big")))
        assert registry.channel.transceive(CommandApdu(*head, data))[1] == 0x6982
    assert changed(before, card) == set()


@pytest.mark.parametrize("level", [0x01, 0x03, 0x13])
def test_below_level_33_6982(issued_counter_text: str, level: int) -> None:
    card, plain = fresh(issued_counter_text)
    weak = open_secure(plain, IssuerSession, StaticKeyPrfs.from_software_keys(
        TRANSPORT_KEYS["enc"], TRANSPORT_KEYS["mac"]), level=level)
    assert card.sm.level == level
    _all_refused(card, weak.channel, 0x6982)  # the first SELECT of an AP ends that session


def _impostor(plain: ApduChannel, keys: dict[str, bytes]) -> ApduChannel:
    """INITIALIZE UPDATE, then EXTERNAL AUTHENTICATE computed with ``keys`` although the
    card's cryptogram did not verify (a host that skips the check)."""
    challenge = secrets.token_bytes(8)
    data = plain.send(CommandApdu(0x80, 0x50, 0x30, 0x00, challenge, 256))
    context = challenge + data[13:21]
    derived = session_keys(StaticKeyPrfs.from_software_keys(keys["enc"], keys["mac"]), context)
    session = SecureSession(derived, SecurityLevel(0x33))
    authenticate = session.mac_command(CommandApdu(0x80, 0x82, 0x33, 0x00),
                                       cryptogram(derived, HOST_CRYPTOGRAM, context))
    with pytest.raises(SecurityStatusNotSatisfiedError):
        plain.send(authenticate)
    return ApduChannel(Scp03Transport(plain, session))


def test_another_cards_keys_fail_at_external_authenticate(issued_counter_text: str) -> None:
    card, plain = fresh(issued_counter_text)
    select(plain, "isd")
    other = {"enc": b"\x77" * 16, "mac": b"\x88" * 16, "dek": b"\x99" * 16}
    impostor = _impostor(plain, other)
    assert card.sm.level == 0
    before = snapshot(card)
    for ap, fid, head, data in COUNTER_COMMANDS:
        for command in (CommandApdu(0x00, 0xA4, 0x04, 0x0C, AIDS[ap]),
                        CommandApdu(0x00, 0xA4, 0x02, 0x0C, fid.to_bytes(2, "big"))):
            impostor.transceive(command)
        with pytest.raises(CardError):
            impostor.send(_apdu(head, data))
    assert changed(before, card) == set()


# ---- inside the counter session: everything else 6985 -----------------------------------

NOT_LISTED_FILES = {"info": (0x0001, 0x0004, 0x0005, 0x0006, 0x0007, 0x0008),
                    "surface": (0x0001, 0x0002, 0x0003, 0x0004, 0x0005, 0x0006),
                    "jpki": (0x0006, 0x0008, 0x0009), "juki": (0x0003, 0x0004),
                    "isd": (0x001E,)}


def test_writes_of_files_outside_the_set_6985(issued_counter_text: str) -> None:
    card, plain = fresh(issued_counter_text)
    secure, before = counter(plain), snapshot(card)
    for ap, fids in NOT_LISTED_FILES.items():
        for fid in fids:
            select(secure, ap, fid)
            assert send(secure, 0x00, 0xD6, 0x00, 0x00, b"\x00")[1] == 0x6985, (ap, fid)
            assert send(secure, 0x00, 0x0E, 0x00, 0x00)[1] == 0x6985, (ap, fid)
    for ap, fid, record in (("common", 0x0001, 2), ("common", 0x0002, 1), ("juki", 0x0002, 1)):
        select(secure, ap, fid)
        assert send(secure, 0x00, 0xDC, record, 0x04, bytes(16))[1] == 0x6985, (ap, fid)
    select(secure, "common", 0x0001)  # record 1 by SFI: only the current-EF form is listed
    assert send(secure, 0x00, 0xDC, 0x01, 0x0C, bytes(16))[1] == 0x6985
    assert changed(before, card) == set()


def test_keys_and_pins_outside_the_set_6985(issued_counter_text: str) -> None:
    card, plain = fresh(issued_counter_text)
    secure, before = counter(plain), snapshot(card)
    for ap, p2 in (("info", 0x93), ("info", 0x86), ("common", 0x99), ("surface", 0x9A)):
        select(secure, ap)
        assert send(secure, 0x00, 0x46, 0x00, p2, ne=256)[1] == 0x6985, (ap, p2)
    for ap, p2 in (("info", 0x92), ("info", 0x94), ("info", 0x95), ("surface", 0x91),
                   ("surface", 0x92), ("surface", 0x93)):
        select(secure, ap)
        assert send(secure, 0x00, 0x2C, 0x02, p2, b"12345678901234")[1] == 0x6985, (ap, p2)
    assert changed(before, card) == set()
    assert card.state.apps[Aid.CARD_INFO.hex()].pins["0012"].tries_left == 0


OTHER_COMMANDS = [("jpki", (0x00, 0xB0, 0x00, 0x00), b"", 16),  # READ BINARY
                  ("jpki", (0x00, 0x20, 0x00, 0x98), b"1234", None),  # VERIFY
                  ("jpki", (0x00, 0x24, 0x01, 0x98), b"1111", None),  # CHANGE REFERENCE DATA
                  ("common", (0x80, 0x32, 0x00, 0x9C), b"1111", None),  # CHANGE KEY
                  ("juki", (0x00, 0xDA, 0x00, 0x01), b"\x00", None),  # PUT DATA (record code)
                  ("isd", (0x00, 0xDA, 0x00, 0xF0), b"13101", None),  # PUT DATA (MF object)
                  ("isd", (0x80, 0xD8, 0x00, 0x81), b"\x4f\x00", None),  # PUT KEY
                  ("isd", (0x80, 0xCA, 0x00, 0x45), b"", 256),  # GET DATA
                  ("common", (0x00, 0x88, 0x00, 0x99), b"\x01", 256),  # INTERNAL AUTHENTICATE
                  ("surface", (0x80, 0x2A, 0x00, 0x00), b"\x01", 256),  # presence signature
                  ("jpki", (0x00, 0x84, 0x00, 0x00), b"", 8),  # GET CHALLENGE
                  ("jpki", (0x80, 0xF0, 0x80, 0x01), b"", None)]  # SET STATUS inside an AP


@pytest.mark.parametrize(("ap", "head", "data", "ne"), OTHER_COMMANDS,
                         ids=[f"{c[0]}-{c[1][1]:02X}" for c in OTHER_COMMANDS])
def test_other_commands_in_the_session_6985(issued_counter_text: str, ap: str,
                                            head: tuple[int, int, int, int], data: bytes,
                                            ne: int | None) -> None:
    card, plain = fresh(issued_counter_text)
    secure, before = counter(plain), snapshot(card)
    select(secure, ap)
    assert secure.transceive(CommandApdu(*head, data, ne))[1] == 0x6985
    assert changed(before, card) == set()


def test_the_session_cannot_lock_again_but_can_wipe(issued_counter_text: str) -> None:
    card, plain = fresh(issued_counter_text)
    secure = counter(plain)
    assert send(secure, 0x80, 0xF0, 0x80, 0x0F)[1] == 0x6985
    assert card.state.life_cycle == LifeCycle.SECURED
    assert send(secure, 0x80, 0xF0, 0x80, 0x01)[1] == 0x9000  # recovery's wipe (unchanged)
    assert card.state.life_cycle == LifeCycle.OP_READY


# ---- random APDUs inside the counter session -----------------------------------------------

ALLOWED: set[Key] = (
    {(aid, "file", fid) for aid, fid in counter_rules.FILES}
    | {(aid, "record", fid, str(number)) for aid, fid, number in counter_rules.RECORDS}
    | {(aid, "key", fid) for aid, fid in counter_rules.KEYS}
    | {(aid, "pin", fid) for aid, fid in counter_rules.PINS})
INS_MIX = [0xA4, 0x0E, 0xD6, 0xDC, 0x46, 0x2C, 0x20, 0x24, 0x32, 0xDA, 0xD8, 0xF0, 0xB0,
           0xB2, 0xCA, 0x88, 0x2A, 0x84, 0xAE]
FIDS = [bytes((0, n)) for n in range(1, 0x1F)]


SELECT_AP = st.sampled_from(list(AIDS.values())).map(
    lambda aid: CommandApdu(0x00, 0xA4, 0x04, 0x0C, aid))
SELECT_EF = st.one_of(st.sampled_from(FIDS), st.sampled_from(FIDS[:4])).map(
    lambda fid: CommandApdu(0x00, 0xA4, 0x02, 0x0C, fid))
BYTE = st.one_of(st.sampled_from([0x00, 0x01, 0x02, 0x04, 0x80]), st.integers(0x80, 0x9F),
                 st.integers(0, 255))


@st.composite
def other_apdus(draw: st.DrawFn) -> CommandApdu:
    ins = draw(st.one_of(st.sampled_from(INS_MIX), st.sampled_from(INS_MIX),
                         st.integers(0, 255)))
    return CommandApdu(draw(st.sampled_from([0x00, 0x80])), ins, draw(BYTE), draw(BYTE),
                       draw(st.binary(max_size=24)), draw(st.none() | st.just(256)))


KEY_P2 = st.one_of(st.just(0x80), st.sampled_from([0x86, 0x93, 0x97, 0x99, 0x9A]),
                   st.integers(0x80, 0x9F))
PIN_P2 = st.one_of(st.just(0x80), st.integers(0x91, 0x9C), st.integers(0x80, 0x9F))
WRITE_HEADERS = {0x0E: (st.just(0x00), st.sampled_from([0x00, 0x10])),
                 0xD6: (st.just(0x00), st.sampled_from([0x00, 0x10])),
                 0xDC: (st.sampled_from([0x01, 0x02]), st.sampled_from([0x04, 0x04, 0x0C])),
                 0x46: (st.just(0x00), KEY_P2), 0x2C: (st.just(0x02), PIN_P2)}
SECRETS = st.sampled_from([b"1234", b"ABC123", b"550217", b"123456789012", b"55021720352285"])


@st.composite
def write_apdus(draw: st.DrawFn) -> CommandApdu:
    """The write commands, with headers and data the card may well accept."""
    ins = draw(st.sampled_from(sorted(WRITE_HEADERS)))
    p1, p2 = (draw(strategy) for strategy in WRITE_HEADERS[ins])
    data = b"" if ins in (0x0E, 0x46) else draw(st.one_of(SECRETS, st.binary(min_size=1,
                                                                              max_size=24)))
    return CommandApdu(0x00, ins, p1, p2, data, 256 if ins == 0x46 else None)


# A step: maybe SELECT an AP, maybe SELECT an EF, then a command (a write more often).
STEPS = st.tuples(st.none() | SELECT_AP, st.none() | SELECT_EF,
                  st.one_of(write_apdus(), write_apdus(), other_apdus())).map(
    lambda step: [apdu for apdu in step if apdu is not None])


@settings(max_examples=250, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=st.lists(STEPS, min_size=1, max_size=12))
def test_random_apdus_in_the_session_touch_only_the_counter_set(
        issued_counter_text: str, pooled_rsa_keys: None, steps: list[list[CommandApdu]]) -> None:
    card, plain = fresh(issued_counter_text)
    secure, before = counter(plain), snapshot(card)
    for command in (apdu for step in steps for apdu in step):
        try:
            secure.transceive(command)
        except CardError:
            break  # the host's session is gone: nothing more reaches the card under it
        if card.state.life_cycle != LifeCycle.SECURED:  # SET STATUS wipe: all blank
            assert card.state.life_cycle == LifeCycle.OP_READY
            assert not any(app.keys.get(fid) for app in card.state.apps.values()
                           for fid in app.keys)
            return
    assert changed(before, card) <= ALLOWED
