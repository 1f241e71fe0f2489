"""Moves in the registry (特例転出・特例転入): the planned move and its rules, the
move-in with and without the card, and the deadlines that expire or lapse them."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.helpers import KeptEvents
from tools.registry import Registry, RegistryError, new_record_code
from tools.registry.events import Event

EXPIRY = dt.date(2036, 1, 1)
TODAY = dt.date(2026, 5, 1)
SERIAL = "100000000000001"
IDENTITY = {"name": "山田 太郎", "name_kana": "ヤマダ タロウ", "birth_date": "1985-04-12",
            "sex": "1", "address": "東京都千代田区千代田1-1"}


@pytest.fixture
def moving(registry: Registry) -> tuple[Registry, int, KeptEvents]:
    code = new_record_code()
    registry.begin_issuance(SERIAL, "resident", code, "131016", EXPIRY)
    registry.complete_issuance(SERIAL, b"cert", identity=IDENTITY)
    sink = KeptEvents()
    registry.event_sink = sink
    resident = registry.resident_of_code(code)
    assert resident is not None
    return registry, resident[0], sink


def test_move_out_records_a_planned_move_from_the_cards_municipality(moving) -> None:  # type: ignore[no-untyped-def]
    registry, resident, sink = moving
    move = registry.record_move(resident, "011002", TODAY, "転勤")
    assert (move.status, move.from_municipality, move.to_municipality, move.card_serial) == (
        "planned", "131016", "011002", SERIAL)
    assert registry.open_move_of(resident) == move
    assert registry.get(SERIAL).status == "active"  # the card stays valid
    event = sink.committed[-1]
    assert (event.event, event.reason, event.card_serial, event.resident_id) == (
        "move-out", "転勤", SERIAL, resident)
    assert dict(event.detail) == {"move": move.id, "date": "2026-05-01", "from": "131016",
                                  "to": "011002"}


def test_move_out_rules(moving) -> None:  # type: ignore[no-untyped-def]
    registry, resident, sink = moving
    with pytest.raises(RegistryError, match="already names"):
        registry.record_move(resident, "131016", TODAY, "転居")
    registry.record_move(resident, "011002", TODAY, "転勤")
    with pytest.raises(RegistryError, match="already has an open move"):
        registry.record_move(resident, "012025", TODAY, "転勤")
    assert sink.names() == ["move-out"]  # nothing of the refusals was kept
    registry.set_status(SERIAL, "suspended", "investigation")
    registry.cancel_move(registry.open_move_of(resident).id, "取消")
    with pytest.raises(RegistryError, match="needs an active card"):
        registry.record_move(resident, "011002", TODAY, "転勤")


def test_move_in_with_the_card_completes_it_and_updates_identity_and_card(moving) -> None:  # type: ignore[no-untyped-def]
    registry, resident, _sink = moving
    move = registry.record_move(resident, "011002", TODAY, "転勤")
    new = IDENTITY | {"address": "北海道札幌市中央区北1条西2丁目"}
    with registry.transaction() as db:
        registry.update_identity(db, resident, new, SERIAL, "011002")
        registry.complete_move(db, move.id, TODAY, new["address"])
    done = registry.move(move.id)
    assert (done.status, done.moved_in_date, done.new_address) == (
        "completed", "2026-05-01", new["address"])
    assert done.notified_at and done.continued_at
    assert registry.identity_of(resident)["address"] == new["address"]
    assert registry.get(SERIAL).municipality_code == "011002"
    assert registry.open_move_of(resident) is None


def test_a_failed_transaction_keeps_nothing(moving) -> None:  # type: ignore[no-untyped-def]
    registry, resident, sink = moving
    move = registry.record_move(resident, "011002", TODAY, "転勤")
    with pytest.raises(RuntimeError), registry.transaction() as db:
        registry.update_identity(db, resident, IDENTITY | {"address": "x"}, SERIAL, "011002")
        registry.complete_move(db, move.id, TODAY, "x")
        registry.record_event(db, Event("move-in", card_serial=SERIAL))
        raise RuntimeError("the card write failed")
    assert registry.move(move.id).status == "planned"
    assert registry.identity_of(resident)["address"] == IDENTITY["address"]
    assert registry.get(SERIAL).municipality_code == "131016"
    assert sink.names() == ["move-out"]


def test_planned_moves_expire_after_the_grace_period(moving) -> None:  # type: ignore[no-untyped-def]
    registry, resident, sink = moving
    move = registry.record_move(resident, "011002", TODAY, "転勤")
    assert registry.lapse_due(TODAY + dt.timedelta(days=30)) == []
    assert registry.lapse_due(TODAY + dt.timedelta(days=31)) == [move.id]
    assert registry.move(move.id).status == "expired"
    assert "move_out_grace_days 30" in sink.committed[-1].reason
    assert registry.get(SERIAL).status == "active"


def test_card_later_lapses_after_the_continued_use_deadline(moving) -> None:  # type: ignore[no-untyped-def]
    registry, resident, sink = moving
    move = registry.record_move(resident, "011002", TODAY, "転勤")
    with registry.transaction() as db:
        registry.notify_move_in(db, move.id, TODAY, "札幌", 90)
    notified = registry.move(move.id)
    assert (notified.status, notified.continued_use_deadline) == ("moved-in", "2026-07-30")
    assert registry.lapse_due(dt.date(2026, 7, 30)) == []
    assert registry.lapse_due(dt.date(2026, 7, 31)) == [move.id]
    card = registry.get(SERIAL)
    assert (card.status, card.status_reason) == (
        "expired", "lapsed: continued use not registered within 90 days of move-in (2026-05-01)")
    assert registry.move(move.id).status == "lapsed"
    assert sink.names()[-2:] == ["card-expired", "move-lapsed"]


def test_continued_use_completes_a_moved_in_move(moving) -> None:  # type: ignore[no-untyped-def]
    registry, resident, _sink = moving
    move = registry.record_move(resident, "011002", TODAY, "転勤")
    with registry.transaction() as db:
        registry.notify_move_in(db, move.id, TODAY, "札幌", 90)
    with registry.transaction() as db:
        registry.complete_move(db, move.id)
    assert registry.move(move.id).status == "completed"
    assert registry.lapse_due(dt.date(2027, 1, 1)) == []
    with pytest.raises(RegistryError, match="is completed"), registry.transaction() as db:
        registry.complete_move(db, move.id)
    assert [m.id for m in registry.moves_of(resident)] == [move.id]


def test_a_lapsed_cards_certificates_are_revoked(moving) -> None:  # type: ignore[no-untyped-def]
    """A lapsed card is not past its validity: its certificates must reach the CRL."""
    from .test_registry_certificates import Issued, certificate

    registry, resident, sink = moving
    issued = Issued("jpki-auth", certificate(days=3650), "resident-issuing-ca", 1)
    with registry.transaction() as db:
        registry.record_certificate(db, issued, card_serial=SERIAL)
    move = registry.record_move(resident, "011002", TODAY, "転勤")
    with registry.transaction() as db:
        registry.notify_move_in(db, move.id, TODAY, "札幌", 90)
    assert registry.lapse_due(dt.date(2026, 7, 31)) == [move.id]
    [record] = registry.certificates_of(card_serial=SERIAL)
    assert (record.status, record.reason) == ("revoked", "lapsed")
    assert "certificate-revoked" in sink.names()


def test_a_move_settled_meanwhile_is_not_written_again(moving) -> None:  # type: ignore[no-untyped-def]
    """Two stations race one move-in: the one that checked the move before the other
    completed it is refused under the write lock, before its journal entry or any APDU."""
    from tools.counter.identity_change import Presented
    from tools.counter.moves import _rewrite

    registry, resident, _sink = moving
    stale = registry.record_move(resident, "011002", TODAY, "転勤")
    with registry.transaction() as db:  # the other station's move-in completes it
        registry.complete_move(db, stale.id, TODAY, "札幌")
    card = Presented(SERIAL, resident, "131016", dt.date(2036, 1, 1), bytes(32))
    with pytest.raises(RegistryError, match="another station settled it"):
        _rewrite(None, None, registry, {}, card, "move-in", stale, IDENTITY, TODAY.isoformat(),  # type: ignore[arg-type]
                 True, TODAY)
    assert registry.open_operation_of(SERIAL) is None


def test_a_move_whose_card_is_being_written_does_not_lapse(moving) -> None:  # type: ignore[no-untyped-def]
    """An interrupted continue-card must stay finishable: the sweep waits for it."""
    registry, resident, _sink = moving
    move = registry.record_move(resident, "011002", TODAY, "転勤")
    with registry.transaction() as db:
        registry.notify_move_in(db, move.id, TODAY, "札幌", 90)
    operation = registry.begin_operation(SERIAL, "continue-card", {"move": move.id}, None)
    registry.interrupt_operation(operation, "CardRemovedError")
    assert registry.lapse_due(dt.date(2026, 7, 31)) == []
    assert registry.move(move.id).status == "moved-in"
    with registry.transaction() as db:
        registry.settle_operation(db, operation, "rolled-back")
    assert registry.lapse_due(dt.date(2026, 7, 31)) == [move.id]
