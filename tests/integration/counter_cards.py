"""In-process resident cards for the counter tests: issued through the real issuance
against the rig's token, and the checks that card and registry agree."""

from __future__ import annotations

import dataclasses

from cardlib.apps.card_info import CardInfoApSession
from cardlib.apps.common import CommonApSession
from cardlib.channel import ApduChannel
from cardlib.emulator.profiles import blank_resident_card, random_serial
from cardlib.emulator.resident_card_os import ResidentCardOs
from cardlib.transport import InProcessTransport
from hsm.cv_hierarchy import station_anchors
from hsm.diversify import KeyPurpose, export_for_card_maker
from tools.issuance.request import load_request
from tools.issuance.resident_card import issue_resident_card
from tools.registry import new_record_code
from tools.resident.card_info import CardInfoKey, Credential, What, read_card_info
from tools.station.pins import Pin, ResidentCardPins

from ..conftest import ROOT

PINS = ResidentCardPins(Pin("1111"), Pin("2222"), Pin("SIGN3333"))
BASE = load_request(ROOT / "fixtures" / "requests" / "resident-yamada.json")


def issued_card(station) -> tuple[ResidentCardOs, str]:  # type: ignore[no-untyped-def]
    """A card issued to a new resident of 131016; (card, record code)."""
    serial = random_serial()
    keys = export_for_card_maker(station.hsm, serial)
    card = ResidentCardOs(blank_resident_card(serial, {
        "enc": keys[KeyPurpose.ENC], "mac": keys[KeyPurpose.MAC], "dek": keys[KeyPurpose.DEK]}))
    request = dataclasses.replace(BASE, resident_code=new_record_code())
    card.power_on()
    issue_resident_card(ApduChannel(InProcessTransport(card)), station.hsm, station.registry,
                        request, PINS)
    return card, request.resident_code


def channel(card: ResidentCardOs) -> ApduChannel:
    card.power_on()
    return ApduChannel(InProcessTransport(card))


def card_state(station, card: ResidentCardOs) -> tuple[dict[str, str], str]:  # type: ignore[no-untyped-def]
    """The 4 information as the card-info AP releases it with the PIN (integrity record
    verified under EF 0004, digests matching), and the 共通AP municipality."""
    session = CardInfoApSession(channel(card))
    reading = read_card_info(session, Credential(CardInfoKey.PIN, PINS.card_info),
                             What.IDENTITY, station_anchors(station.hsm))
    assert reading.four_info is not None
    four = reading.four_info
    common = CommonApSession(session.channel)
    common.select()
    return ({"name": four.name, "address": four.address,
             "birth_date": four.birth_date.isoformat(), "sex": four.sex},
            common.read_card_info().municipality_code)


def registry_state(station, serial: str) -> tuple[dict[str, str], str]:  # type: ignore[no-untyped-def]
    row = station.registry.get(serial)
    identity = station.registry.identity_of(row.resident_id)
    return ({k: identity[k] for k in ("name", "address", "birth_date", "sex")},
            row.municipality_code)


def assert_agree(station, card: ResidentCardOs) -> tuple[dict[str, str], str]:  # type: ignore[no-untyped-def]
    serial = card.state.serial
    on_card = card_state(station, card)
    assert on_card == registry_state(station, serial)
    signs = [c for c in station.registry.certificates_of(card_serial=serial, status="valid")
             if c.kind == "jpki-sign"]
    assert len(signs) <= 1, signs
    return on_card
