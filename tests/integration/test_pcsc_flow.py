"""pyscard -> pcscd -> vpcd -> emulated card, with keys in SoftHSM."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from cardlib import pcsc
from cardlib.apps.card_info import CardInfoApSession
from cardlib.channel import ApduChannel
from cardlib.constants import Ins, LifeCycle
from cardlib.emulator.state import StateFile
from cardlib.errors import CardRemovedError, NoCardError, PinBlockedError, TransportError
from tests.helpers import exhaust_card_info_pin
from tools.issuance.request import load_request
from tools.issuance.resident_card import issue_resident_card
from tools.registry import new_record_code
from tools.resident.verifier import Verifier
from tools.rig.rig import reader_name
from tools.station.pins import Pin, ResidentCardPins
from tools.station.readers import open_card

from ..conftest import ROOT

BASE_REQUEST = load_request(ROOT / "fixtures" / "requests" / "resident-yamada.json")


def new_request():  # type: ignore[no-untyped-def]
    """Yamada with a record code of their own (the registry allows one live card each)."""
    return dataclasses.replace(BASE_REQUEST, resident_code=new_record_code())
PIN = "5823"
PINS = ResidentCardPins(Pin(PIN), Pin("1357"), Pin("JUKI2468"))


def verifier(station) -> Verifier:  # type: ignore[no-untyped-def]
    return Verifier.for_station(station.registry, station.hsm, station.home.settings())


def issue(station, reader: str, request=None):  # type: ignore[no-untyped-def]
    with open_card(reader) as channel:
        return issue_resident_card(channel, station.hsm, station.registry,
                                   request or new_request(), PINS)


def test_issue_and_verify_over_pcsc(station, blank_reader: str) -> None:  # type: ignore[no-untyped-def]
    request = new_request()
    issued = issue(station, blank_reader, request)
    assert station.registry.get(issued.card_serial).status == "active"
    with open_card(blank_reader) as channel:
        verdict = verifier(station).verify(channel, ("pin", Pin(PIN)))
        session = CardInfoApSession(channel)  # left selected, the PIN verified: no 2nd VERIFY
        assert session.read_four_info() == request.four_info()
        assert session.read_individual_number() == request.individual_number
    assert verdict.genuine, verdict
    assert verdict.card_serial == issued.card_serial
    assert [c.name for c in verdict.checks] == [
        "applications", "cv_chain", "card_record", "certificate", "registry_status",
        "credential", "signed_key", "presence"]
    assert verdict.ours and not verdict.skipped and verdict.anchor is not None
    assert verdict.anchor["source"] == "station" and verdict.chain[0] == verdict.anchor["key_id"]


def test_wrong_pin_counts_down_and_blocks(station, blank_reader: str) -> None:  # type: ignore[no-untyped-def]
    issue(station, blank_reader)
    with open_card(blank_reader) as channel:
        session = CardInfoApSession(channel)
        session.select()
        exhaust_card_info_pin(session, PIN)
    with open_card(blank_reader) as channel:  # blocked across connections too
        session = CardInfoApSession(channel)
        session.select()
        with pytest.raises(PinBlockedError):
            session.verify_pin(PIN)


class ReplayingTransport:
    """A man in the middle that answers INTERNAL AUTHENTICATE with a recorded response."""

    def __init__(self, inner, recorded: dict) -> None:  # type: ignore[no-untyped-def]
        self.inner = inner
        self.recorded = recorded

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]:
        if apdu[1] == Ins.INTERNAL_AUTHENTICATE and "response" in self.recorded:
            return self.recorded["response"]
        answer = self.inner.send_and_receive(apdu)
        if apdu[1] == Ins.INTERNAL_AUTHENTICATE:
            self.recorded["response"] = answer
        return answer

    def close(self) -> None:
        self.inner.close()


def verify_twice_replaying(station, blank_reader: str, replaying: type[ReplayingTransport],  # type: ignore[no-untyped-def]
                           offline: bool = False) -> list:  # type: ignore[type-arg]
    """Issue a card and verify it twice through ``replaying`` sharing one recording: the
    second verification is answered with what the card answered the first."""
    issue(station, blank_reader)
    check = verifier(station)
    recorded: dict = {}
    verdicts = []
    for _ in range(2):
        with pcsc.PcscTransport(blank_reader, exclusive=True) as transport:
            verdicts.append(check.verify(ApduChannel(replaying(transport, recorded)),
                                         ("pin", Pin(PIN)), offline=offline))
    return verdicts


def test_replayed_internal_authenticate_is_rejected(station, blank_reader: str) -> None:  # type: ignore[no-untyped-def]
    verdicts = verify_twice_replaying(station, blank_reader, ReplayingTransport)
    assert verdicts[0].genuine
    assert not verdicts[1].genuine
    failed = {c.name: c for c in verdicts[1].checks if not c.ok}
    assert list(failed) == ["certificate"]


class ReplayingPresence(ReplayingTransport):
    """The same man in the middle for the card-alone proof: 80 2A 00 00 answered with a
    recorded presence signature."""

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]:
        presence = apdu[:4] == bytes.fromhex("802A0000")
        if presence and "response" in self.recorded:
            return self.recorded["response"]
        answer = self.inner.send_and_receive(apdu)
        if presence:
            self.recorded["response"] = answer
        return answer


def test_replayed_presence_signature_is_rejected(station, blank_reader: str) -> None:  # type: ignore[no-untyped-def]
    verdicts = verify_twice_replaying(station, blank_reader, ReplayingPresence, offline=True)
    assert verdicts[0].genuine
    assert [c.name for c in verdicts[1].checks if not c.ok] == ["presence"]


LOCK_HEADER = bytes.fromhex("F0800F")  # SET STATUS to SECURED: INS P1 P2 of the lock


class PullingTransport:
    """Pulls the card (kills its emulator) just before APDU number ``at``, or, with
    ``at`` = LOCK_HEADER, just before the lock (the script's length varies by a few
    APDUs from card to card: X.509 serials, the security-code image)."""

    def __init__(self, inner, at: int | bytes, pull) -> None:  # type: ignore[no-untyped-def]
        self.inner, self.at, self.pull, self.count = inner, at, pull, 0

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]:
        if self.count == self.at or (self.at == LOCK_HEADER and apdu[1:4] == LOCK_HEADER):
            self.pull()
        self.count += 1
        return self.inner.send_and_receive(apdu)

    def close(self) -> None:
        self.inner.close()


def test_pulling_the_card_mid_issuance_raises_card_removed(  # type: ignore[no-untyped-def]
        station, rig, tmp_path) -> None:
    """Pull the card before APDU k, for k at the edges of every phase of issuance
    (before the registry row, right after it, in the SCP03 part, before the lock)."""
    rig.insert_card(0, tmp_path / "counted.json")
    with pcsc.PcscTransport(reader_name(0), exclusive=True) as transport:
        counter = PullingTransport(transport, -1, lambda: None)
        issue_resident_card(ApduChannel(counter), station.hsm, station.registry, new_request(),
                            PINS)
    total = counter.count
    assert total > 30
    for at, recorded in [(0, None), (2, None), (3, "failed"), (total // 2, "failed"),
                         (total - 16, "failed"), (LOCK_HEADER, "failed")]:
        card_state = StateFile(tmp_path / f"card-{at}.json")
        rig.insert_card(0, card_state.path)
        serial = card_state.load().serial
        with pcsc.PcscTransport(reader_name(0), exclusive=True) as transport:
            channel = ApduChannel(PullingTransport(transport, at, lambda: rig.remove_card(0)))
            with pytest.raises(CardRemovedError):
                issue_resident_card(channel, station.hsm, station.registry, new_request(), PINS)
        entry = station.registry.get(serial)
        assert (entry.status if entry else None) == recorded, at  # never "issuing"/"active"
        assert card_state.load().life_cycle == LifeCycle.OP_READY  # the card was not locked


def test_exclusive_connection_keeps_others_out(blank_reader: str) -> None:
    with open_card(blank_reader), pytest.raises(TransportError):
        pcsc.PcscTransport(blank_reader)


def test_wait_for_card_times_out_then_sees_insertion(rig, tmp_path) -> None:  # type: ignore[no-untyped-def]
    rig.remove_card(1)
    start = time.monotonic()
    with pytest.raises(NoCardError, match=r"within 0\.5 s"):
        pcsc.wait_for_card(reader_name(1), timeout=0.5)
    assert 0.5 <= time.monotonic() - start < 3
    inserter = threading.Timer(0.5, lambda: rig.insert_card(1, tmp_path / "late.json"))
    inserter.start()
    try:
        assert pcsc.wait_for_card(reader_name(1), timeout=15) == reader_name(1)
    finally:
        inserter.join()


def test_record_code_only_with_the_station_master_keys(station, blank_reader: str) -> None:  # type: ignore[no-untyped-def]
    """Over PC/SC: the code reads back through SCP03 with the token's derived keys,
    changes with its history kept, and stays closed to anyone without the masters."""
    import datetime as dt

    from cardlib.apps.resident_registry import open_registry
    from cardlib.errors import SecureMessagingError
    from cardlib.scp03.keys import StaticKeyPrfs
    from hsm.diversify import KeySet, card_keys
    from tools.resident.record_code import read_registry_ap
    from tools.station.card_keys import token_prfs

    request = new_request()
    issued = issue(station, blank_reader, request)
    with open_card(blank_reader) as channel:
        contents = read_registry_ap(channel, station.hsm)
        assert (contents.card_serial, contents.resident_code, contents.history) == (
            issued.card_serial, request.resident_code, [])
        with card_keys(station.hsm, issued.card_serial, KeySet.RESIDENT_REGISTRY) as keys:
            registry = open_registry(channel, token_prfs(keys))
            registry.change_code("55120933867", dt.date(2026, 11, 27), "本人の請求")
        after = read_registry_ap(channel, station.hsm)
        assert after.resident_code == "55120933867"
        assert [(c.previous_code, c.reason) for c in after.history] == [
            (request.resident_code, "本人の請求")]
        guess = StaticKeyPrfs.from_software_keys(bytes(16), bytes(16))
        with pytest.raises(SecureMessagingError, match="card cryptogram"):
            open_registry(channel, guess)


def test_exclusive_open_waits_out_a_brief_shared_look(blank_reader: str) -> None:
    from cardlib.errors import ReaderBusyError
    from tools.station.readers import connect_exclusive

    onlooker = pcsc.PcscTransport(blank_reader)  # another application glancing at the card
    threading.Timer(0.5, onlooker.close).start()
    start = time.monotonic()
    with connect_exclusive(blank_reader):
        assert 0.3 < time.monotonic() - start < 3
    with open_card(blank_reader), pytest.raises(ReaderBusyError):
        connect_exclusive(blank_reader, patience=0.3)  # held for good: a clear error
