"""Issuance is atomic under faults. For every APDU index k of the issuance script the
card fails at k — pulled out, or its answer garbled — and afterwards the card is either
fully issued and recorded ``active`` exactly once, or recorded ``failed`` (or not at
all) and issuing the same request again succeeds. Never ``issuing`` left behind,
never ``active`` without a locked card. Runs in-process against the real token."""

from __future__ import annotations

import dataclasses

from cardlib.channel import ApduChannel
from cardlib.constants import LifeCycle
from cardlib.emulator.profiles import blank_resident_card, random_serial
from cardlib.emulator.resident_card_os import ResidentCardOs
from cardlib.errors import CardError
from cardlib.transport import InProcessTransport
from hsm.diversify import KeyPurpose, export_for_card_maker
from hsm.errors import HsmError
from tests.helpers import FaultyTransport, pooled_card_keys
from tools.errors import JukiError
from tools.issuance.request import load_request
from tools.issuance.resident_card import issue_resident_card
from tools.registry import new_record_code
from tools.resident.verifier import Verifier
from tools.station.pins import Pin, ResidentCardPins

from ..conftest import ROOT

__all__ = ["pooled_card_keys"]  # autouse: this module's cards share a few RSA keys
PINS = ResidentCardPins(Pin("1111"), Pin("2222"), Pin("SIGN3333"))
BASE = load_request(ROOT / "fixtures" / "requests" / "resident-yamada.json")


def blank_card(station) -> ResidentCardOs:  # type: ignore[no-untyped-def]
    serial = random_serial()
    keys = export_for_card_maker(station.hsm, serial)
    return ResidentCardOs(blank_resident_card(serial, {
        "enc": keys[KeyPurpose.ENC], "mac": keys[KeyPurpose.MAC], "dek": keys[KeyPurpose.DEK]}))


def attempt(station, card: ResidentCardOs, request, transport) -> bool:  # type: ignore[no-untyped-def]
    card.power_on()
    try:
        issue_resident_card(ApduChannel(transport), station.hsm, station.registry, request, PINS)
    except (CardError, HsmError, JukiError):
        return False
    return True


def rows(station, serial: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [c.status for c in station.registry.list() if c.serial == serial]


def assert_consistent(station, card: ResidentCardOs, request, issued: bool) -> None:  # type: ignore[no-untyped-def]
    serial = card.state.serial
    statuses = rows(station, serial)
    assert "issuing" not in statuses
    if issued:
        assert statuses.count("active") == 1 and card.state.life_cycle == LifeCycle.SECURED
        return
    assert "active" not in statuses and statuses[-1:] in ([], ["failed"])
    # the same request again, on the same card, now without faults
    assert attempt(station, card, request, InProcessTransport(card))
    assert rows(station, serial).count("active") == 1
    assert card.state.life_cycle == LifeCycle.SECURED
    card.power_on()
    verdict = Verifier.for_station(station.registry, station.hsm, station.home.settings()).verify(
        ApduChannel(InProcessTransport(card)), ("pin", PINS.card_info))
    assert verdict.genuine, verdict


def test_every_apdu_index_removal_and_garbling(station) -> None:  # type: ignore[no-untyped-def]
    probe = blank_card(station)
    counter = FaultyTransport(InProcessTransport(probe), fail_at=10**6)
    assert attempt(station, probe, dataclasses.replace(BASE, resident_code=new_record_code()),
                   counter)
    total = counter.count
    assert total > 30
    # The script's length varies by a few APDUs from card to card (the X.509 serial
    # numbers and the security-code image change the size of what is written), so an
    # index near the end may lie past a given run: such a run never meets its fault.
    missed = {"remove": 0, "garble": 0}
    for mode in ("remove", "garble"):
        for k in range(total):
            card = blank_card(station)
            request = dataclasses.replace(BASE, resident_code=new_record_code())
            transport = FaultyTransport(InProcessTransport(card), fail_at=k, mode=mode)
            issued = attempt(station, card, request, transport)
            injected = transport.count > k
            # a pulled card never finishes; every garbled answer is noticed
            assert issued is not injected, (mode, k, transport.count)
            missed[mode] += not injected
            assert_consistent(station, card, request, issued)
    assert missed["remove"] <= 8 and missed["garble"] <= 8, missed


class InjectedFaults:
    """Makes the k-th PKCS#11 section of the process raise a given PKCS#11 error."""

    def __init__(self, hsm, fail_at: int, error: type) -> None:  # type: ignore[no-untyped-def]
        self.hsm, self.fail_at, self.error, self.count = hsm, fail_at, error, 0
        self.original = type(hsm).locked

    def __enter__(self) -> InjectedFaults:
        injector = self
        original = self.original

        from contextlib import contextmanager

        @contextmanager
        def locked(hsm):  # type: ignore[no-untyped-def]
            with original(hsm) as session:
                index = injector.count
                injector.count += 1
                if index == injector.fail_at:
                    raise injector.error()
                yield session

        type(self.hsm).locked = locked  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        type(self.hsm).locked = self.original  # type: ignore[method-assign]


def test_every_hsm_call_failing(station) -> None:  # type: ignore[no-untyped-def]
    import pkcs11

    errors = [pkcs11.SessionHandleInvalid, pkcs11.DeviceRemoved, pkcs11.GeneralError]
    probe = blank_card(station)
    with InjectedFaults(station.hsm, fail_at=10**6, error=Exception) as counting:
        assert attempt(station, probe, dataclasses.replace(BASE, resident_code=new_record_code()),
                       InProcessTransport(probe))
    total = counting.count
    assert total > 20
    for k in range(total):
        card = blank_card(station)  # made before the faults: the card maker's own session
        request = dataclasses.replace(BASE, resident_code=new_record_code())
        session_before = station.hsm._session
        with InjectedFaults(station.hsm, fail_at=k, error=errors[k % 3]):
            issued = attempt(station, card, request, InProcessTransport(card))
        assert not issued, k
        assert station.hsm._session is not session_before  # the next attempt: a fresh session
        assert_consistent(station, card, request, issued)
