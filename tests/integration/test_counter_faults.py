"""Move-in and 4-information changes are atomic under faults. For every APDU index k of
the operation the card fails at k (pulled out, or its answer garbled), and the token
fails at every PKCS#11 section: afterwards either the operation is done and card and
registry agree (card-info EF 0002 read back with the PIN = the registry's identity, the
integrity record verifying, the 共通AP municipality = the registry's), or it is open
(``interrupted``) and `juki issue recover`'s finish makes them agree; a sample is rolled
back instead and they agree on the old state. One card serves every run of a test."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from cardlib.channel import ApduChannel
from cardlib.errors import CardError
from cardlib.transport import InProcessTransport
from hsm.errors import HsmError
from tests.helpers import FaultyTransport, pooled_card_keys
from tools.counter.identity_change import change_identity
from tools.counter.moves import move_in
from tools.counter.recovery import recover_operation
from tools.errors import JukiError

from .counter_cards import PINS, assert_agree, channel, issued_card
from .test_issuance_faults import InjectedFaults

__all__ = ["pooled_card_keys"]  # autouse: this module's cards share a few RSA keys
TODAY = dt.date.today()
PLACES = {"131016": "東京都千代田区霞が関二丁目1番2号", "011002": "北海道札幌市中央区北1条西2丁目"}


class Moving:
    """One card moving back and forth between two municipalities."""

    def __init__(self, station) -> None:  # type: ignore[no-untyped-def]
        self.station = station
        self.card, code = issued_card(station)
        self.resident = station.registry.resident_of_code(code)[0]

    def prepare(self) -> str:
        """The planned move to the other municipality (outside any injected fault)."""
        registry = self.station.registry
        here = registry.get(self.card.state.serial).municipality_code
        there = next(m for m in PLACES if m != here)
        if registry.open_move_of(self.resident) is None:
            registry.record_move(self.resident, there, TODAY, "転勤")
        return there

    def attempt(self, transport, there: str | None = None) -> bool:  # type: ignore[no-untyped-def]
        registry = self.station.registry
        there = there or self.prepare()
        self.card.power_on()
        try:
            move_in(ApduChannel(transport), self.station.hsm, registry,
                    self.station.home.settings(), PINS.card_info, PLACES[there], there, TODAY)
        except (CardError, HsmError, JukiError):
            return False
        return True

    def settle(self, roll_back: bool) -> None:
        """After a failed attempt: recover the open operation (finish or roll back), or
        call off the planned move nobody started; card and registry agree after."""
        registry = self.station.registry
        operation = registry.open_operation_of(self.card.state.serial)
        if operation is not None:
            assert operation.status == "interrupted", operation
            recover_operation(channel(self.card), self.station.hsm, registry,
                              self.station.home.settings(), operation.id, PINS.card_info,
                              roll_back)
            assert registry.open_operation_of(self.card.state.serial) is None
        after = assert_agree(self.station, self.card)
        if roll_back and operation is not None:
            old = registry.get(self.card.state.serial).municipality_code
            assert after == (after[0], old) and after[0]["address"] == PLACES[old]
        move = registry.open_move_of(self.resident)
        if move is not None:
            registry.cancel_move(move.id, "test")


def count_apdus(moving: Moving) -> int:
    counter = FaultyTransport(InProcessTransport(moving.card), fail_at=10**6)
    assert moving.attempt(counter)
    assert_agree(moving.station, moving.card)
    return counter.count


@pytest.mark.parametrize("mode", ["remove", "garble"])
def test_move_in_at_every_apdu_index(station, mode: str) -> None:  # type: ignore[no-untyped-def]
    moving = Moving(station)
    total = count_apdus(moving)
    assert total > 40, total
    for k in range(total):
        transport = FaultyTransport(InProcessTransport(moving.card), fail_at=k, mode=mode)
        done = moving.attempt(transport)
        # a pulled card never finishes; a garbled answer to the free look-up of the
        # claimed serial (before the verifier) is tolerated: the verifier reads it again
        if mode == "remove":
            assert done is not (transport.count > k), (mode, k)
        if done:
            assert_agree(station, moving.card)
        else:
            moving.settle(roll_back=k % 7 == 3)


def test_move_in_with_every_hsm_call_failing(station) -> None:  # type: ignore[no-untyped-def]
    import pkcs11

    errors = [pkcs11.SessionHandleInvalid, pkcs11.DeviceRemoved, pkcs11.GeneralError]
    moving = Moving(station)
    moving.attempt(InProcessTransport(moving.card))  # the first move: the verifier's setup
    moving.settle(roll_back=False)
    there = moving.prepare()
    with InjectedFaults(station.hsm, fail_at=10**6, error=Exception) as counting:
        assert moving.attempt(InProcessTransport(moving.card), there)
    total = counting.count
    assert total > 15, total
    for k in range(total):
        there = moving.prepare()
        with InjectedFaults(station.hsm, fail_at=k, error=errors[k % 3]):
            done = moving.attempt(InProcessTransport(moving.card), there)
        assert not done, k
        moving.settle(roll_back=k % 5 == 2)


def test_change_at_every_apdu_index(station) -> None:  # type: ignore[no-untyped-def]
    card, _code = issued_card(station)
    names = itertools.cycle(["佐藤　花子", "山田　花子"])

    def attempt(transport) -> bool:  # type: ignore[no-untyped-def]
        card.power_on()
        try:
            change_identity(ApduChannel(transport), station.hsm, station.registry,
                            station.home.settings(), PINS.card_info, "name", next(names),
                            "婚姻", TODAY)
        except (CardError, HsmError, JukiError):
            return False
        return True

    counter = FaultyTransport(InProcessTransport(card), fail_at=10**6)
    assert attempt(counter)
    for k in range(0, counter.count, 2):
        transport = FaultyTransport(InProcessTransport(card), fail_at=k, mode="remove")
        if not attempt(transport):
            operation = station.registry.open_operation_of(card.state.serial)
            if operation is not None:
                recover_operation(channel(card), station.hsm, station.registry,
                                  station.home.settings(), operation.id, PINS.card_info,
                                  roll_back=k % 4 == 0)
        assert_agree(station, card)
