"""Issuance is atomic under faults. For every APDU index k of the issuance script the
card fails at k — pulled out, or its answer garbled — and afterwards the card is either
fully issued and recorded ``active`` exactly once, or recorded ``failed`` (or not at
all) and issuing the same request again succeeds. Never ``issuing`` left behind,
never ``active`` without a locked card. Runs in-process against the real token."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from cardlib.channel import ApduChannel
from cardlib.constants import LifeCycle
from cardlib.emulator.card_os import VirtualCard
from cardlib.emulator.profiles import blank_resident_card, random_serial
from cardlib.errors import CardError
from cardlib.transport import InProcessTransport
from hsm.diversify import KeyPurpose, export_for_card_maker
from tests.helpers import FaultyTransport
from tools.errors import JukiError
from tools.issuance import issue_resident_card
from tools.pins import Pin, ResidentCardPins
from tools.registry import new_record_code
from tools.requests import load_request
from tools.verifier import Verifier

from ..conftest import ROOT

PINS = ResidentCardPins(Pin("1111"), Pin("2222"), Pin("SIGN3333"))
BASE = load_request(ROOT / "fixtures" / "requests" / "resident-yamada.json")


@pytest.fixture(scope="module", autouse=True)
def pooled_card_keys():  # type: ignore[no-untyped-def]
    """On-card RSA key generation is not what this test is about: reuse a few keys."""
    from cardlib.emulator import key_commands

    pool = itertools.cycle([rsa.generate_private_key(public_exponent=65537, key_size=2048)
                            for _ in range(3)])
    original = key_commands.rsa.generate_private_key
    key_commands.rsa.generate_private_key = lambda **_kw: next(pool)  # type: ignore[assignment]
    yield
    key_commands.rsa.generate_private_key = original  # type: ignore[assignment]


def blank_card(station) -> VirtualCard:  # type: ignore[no-untyped-def]
    serial = random_serial()
    keys = export_for_card_maker(station.hsm, serial)
    return VirtualCard(blank_resident_card(serial, {
        "enc": keys[KeyPurpose.ENC], "mac": keys[KeyPurpose.MAC], "dek": keys[KeyPurpose.DEK]}))


def attempt(station, card: VirtualCard, request, transport) -> bool:  # type: ignore[no-untyped-def]
    card.power_on()
    try:
        issue_resident_card(ApduChannel(transport), station.hsm, station.registry, request, PINS)
    except (CardError, JukiError):
        return False
    return True


def rows(station, serial: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [c.status for c in station.registry.list() if c.serial == serial]


def assert_consistent(station, card: VirtualCard, request, issued: bool) -> None:  # type: ignore[no-untyped-def]
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
    verdict = Verifier.from_token(station.registry, station.hsm).verify(
        ApduChannel(InProcessTransport(card)))
    assert verdict.genuine, verdict


def test_every_apdu_index_removal_and_garbling(station) -> None:  # type: ignore[no-untyped-def]
    probe = blank_card(station)
    counter = FaultyTransport(InProcessTransport(probe), fail_at=10**6)
    assert attempt(station, probe, dataclasses.replace(BASE, resident_code=new_record_code()),
                   counter)
    total = counter.count
    assert total > 30
    outcomes = {"remove": [0, 0], "garble": [0, 0]}
    for mode in ("remove", "garble"):
        for k in range(total):
            card = blank_card(station)
            request = dataclasses.replace(BASE, resident_code=new_record_code())
            issued = attempt(station, card, request,
                             FaultyTransport(InProcessTransport(card), fail_at=k, mode=mode))
            outcomes[mode][issued] += 1
            assert_consistent(station, card, request, issued)
    assert outcomes["remove"] == [total, 0]  # a pulled card never finishes
    assert outcomes["garble"][0] == total  # every garbled answer is noticed
