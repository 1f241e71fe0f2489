"""Moving with the card and changing the 4 information, in process against the rig's
token: the card rewritten over the counter session, the registry in one transaction."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509

from cardlib.apps.jpki import JpkiApSession
from cardlib.constants import JpkiFile
from tools.counter.identity_change import change_identity
from tools.counter.moves import move_in
from tools.errors import RequestError
from tools.registry import RegistryError

from .counter_cards import PINS, assert_agree, channel, issued_card

TODAY = dt.date.today()


def test_move_in_rewrites_card_and_registry(station) -> None:  # type: ignore[no-untyped-def]
    card, code = issued_card(station)
    serial = card.state.serial
    resident = station.registry.resident_of_code(code)[0]
    old_sign = station.registry.current_certificate(serial, "jpki-sign")
    station.registry.record_move(resident, "011002", TODAY, "転勤")
    changed = move_in(channel(card), station.hsm, station.registry, station.home.settings(),
                      PINS.card_info, "北海道札幌市中央区北1条西2丁目", "011002", TODAY)
    identity, municipality = assert_agree(station, card)
    assert identity["address"] == "北海道札幌市中央区北1条西2丁目" and municipality == "011002"
    assert station.registry.certificate(old_sign.serial_number).status == "revoked"
    assert station.registry.certificate(old_sign.serial_number).reason == "four-info-changed"
    new = station.registry.current_certificate(serial, "jpki-sign")
    assert new.serial_number == changed.signature_certificate != old_sign.serial_number
    jpki = JpkiApSession(channel(card))
    jpki.select()
    jpki.verify_pin(PINS.jpki_sign.reveal(), JpkiFile.SIGN_PIN)
    on_card = x509.load_der_x509_certificate(jpki.read_tlv_file(JpkiFile.SIGN_CERT))
    assert f"{on_card.serial_number:x}" == new.serial_number
    assert station.registry.open_operation_of(serial) is None
    assert station.registry.move(changed.move).status == "completed"


def test_change_of_name_and_its_refusals(station) -> None:  # type: ignore[no-untyped-def]
    card, _code = issued_card(station)
    changed = change_identity(channel(card), station.hsm, station.registry,
                              station.home.settings(), PINS.card_info, "name", "佐藤　太郎",
                              "婚姻", TODAY, reissue_signature=False)
    assert changed.signature_certificate is None and len(changed.revoked) == 1
    identity, municipality = assert_agree(station, card)
    assert identity["name"] == "佐藤　太郎" and municipality == "131016"
    with pytest.raises(RequestError, match="needs a new card"):
        change_identity(channel(card), station.hsm, station.registry, station.home.settings(),
                        PINS.card_info, "birth-date", "1990-01-01", "訂正", TODAY)
    station.registry.set_status(card.state.serial, "suspended", "investigation")
    with pytest.raises(RegistryError, match="is suspended"):
        change_identity(channel(card), station.hsm, station.registry, station.home.settings(),
                        PINS.card_info, "address", "x", "訂正", TODAY)


def test_card_later_then_continue_card(station) -> None:  # type: ignore[no-untyped-def]
    from tools.counter.moves import card_later, continue_card

    card, code = issued_card(station)
    serial = card.state.serial
    resident = station.registry.resident_of_code(code)[0]
    station.registry.record_move(resident, "011002", TODAY, "転勤")
    notified = card_later(station.registry, station.home.settings(), code, "札幌市中央区",
                          "011002", TODAY)
    assert notified.status == "moved-in"
    assert station.registry.current_certificate(serial, "jpki-sign") is None
    assert station.registry.get(serial).municipality_code == "131016"  # as the card says
    changed = continue_card(channel(card), station.hsm, station.registry,
                            station.home.settings(), PINS.card_info)
    identity, municipality = assert_agree(station, card)
    assert (identity["address"], municipality) == ("札幌市中央区", "011002")
    assert station.registry.move(notified.id).status == "completed"
    assert changed.kind == "continue-card" and changed.signature_certificate
    with pytest.raises(RegistryError, match="no notified move-in"):
        continue_card(channel(card), station.hsm, station.registry, station.home.settings(),
                      PINS.card_info)
