"""操作履歴 without a token: the event entry's body (canonical, its fields, nothing else),
the recorder's head handling (once per transaction that appended, never after a
rollback), the listing's filters and 付随情報. The token's MAC and head are stand-ins
here (tests/cli/test_audit_events.py runs them in SoftHSM)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest

from tools.audit import event_list, events, log, merkle
from tools.audit.events import Actor, EventRecorder, event_body
from tools.errors import RequestError
from tools.registry import Registry, new_record_code
from tools.registry.events import Event

from .fake_log_keys import FakeAttester

ACTOR = Actor("station-u", "Asia/Tokyo", "alice", "suspend")
NOW = dt.datetime(2026, 12, 3, 1, 2, 3, 456789, tzinfo=dt.UTC)


class FakeToken:
    """The MAC (HMAC-like, keyed by nothing secret here) and the head writes, counted."""

    def __init__(self) -> None:
        self.heads: list[int] = []
        self.fail_mac = False


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> FakeToken:
    fake = FakeToken()

    def fake_mac(_hsm, _version, leaf, _role):  # type: ignore[no-untyped-def]
        if fake.fail_mac:
            raise RuntimeError("token fault during the event MAC")
        return hashlib.sha256(b"mac" + leaf).digest()

    monkeypatch.setattr(events, "mac", fake_mac)
    monkeypatch.setattr(events, "Attester", FakeAttester)
    monkeypatch.setattr(events, "current_version", lambda _hsm, _role: 1)
    monkeypatch.setattr(events.anchors, "write_head",
                        lambda _hsm, _db, size, _root: fake.heads.append(size))
    return fake


@pytest.fixture
def recorded(registry: Registry, token: FakeToken) -> Registry:
    registry.event_sink = EventRecorder(lambda: None, lambda: ACTOR)  # type: ignore[arg-type,return-value]
    return registry


def rows(registry: Registry) -> list[dict]:
    return [json.loads(r[0]) for r in registry.connection().execute(
        "SELECT entry FROM provision_log ORDER BY idx")]


def test_event_body_has_exactly_its_fields_in_both_times() -> None:
    event = Event("card-suspended", "lost", card_serial="S1", resident_id=7,
                  subject_operator=None, detail={"from": "active"})
    body = event_body(ACTOR, event, NOW)
    assert body == {"time_utc": "2026-12-03T01:02:03+00:00",
                    "time_local": "2026-12-03T10:02:03+09:00", "station": "station-u",
                    "operator": "alice", "scope": "suspend", "event": "card-suspended",
                    "reason": "lost", "card_serial": "S1", "resident_id": 7,
                    "subject_operator": None, "detail": {"from": "active"}}
    entry = log.canonical({**body, "index": 3, "kind": events.EVENT_KIND})
    assert entry == json.dumps(json.loads(entry), sort_keys=True, separators=(",", ":"),
                               ensure_ascii=False).encode()
    assert b'"resident_id":7,' in entry  # log.entries_of_resident's pattern finds it


def test_recorder_writes_the_head_once_per_transaction_that_appended(
        recorded: Registry, token: FakeToken) -> None:
    code = new_record_code()
    recorded.begin_issuance("S1", "resident", code, "131016", dt.date(2036, 1, 1))
    assert token.heads == [1]  # one event, one head
    recorded.complete_issuance("S1", b"cert")
    recorded.set_status("S1", "suspended", "investigation")
    assert token.heads == [1, 2, 3]
    assert [r["event"] for r in rows(recorded)] == ["card-issuing", "card-active",
                                                     "card-suspended"]
    assert rows(recorded)[2] | {"time_utc": "", "time_local": ""} == {
        "time_utc": "", "time_local": "", "index": 2, "kind": "event", "station": "station-u",
        "operator": "alice", "scope": "suspend", "event": "card-suspended",
        "reason": "investigation", "card_serial": "S1", "resident_id": 1,
        "subject_operator": None, "detail": {"from": "active"}}
    with recorded.transaction():
        pass  # nothing appended: the head is not rewritten
    assert token.heads == [1, 2, 3]


def test_a_failed_event_rolls_the_change_back_and_the_head_stays(
        recorded: Registry, token: FakeToken) -> None:
    code = new_record_code()
    recorded.begin_issuance("S1", "resident", code, "131016", dt.date(2036, 1, 1))
    recorded.complete_issuance("S1", b"cert")
    token.fail_mac = True
    with pytest.raises(RuntimeError, match="event MAC"):
        recorded.set_status("S1", "suspended", "lost card")
    token.fail_mac = False
    card = recorded.get("S1")
    assert card is not None and card.status == "active"
    assert [e.to_status for e in recorded.events("S1")] == ["issuing", "active"]
    assert len(rows(recorded)) == 2 and token.heads == [1, 2]
    # an event appended, then the transaction fails: discarded, no head for it
    with pytest.raises(ValueError), recorded.transaction() as db:
        recorded._log_event(db, Event("card-suspended", "x", card_serial="S1"))
        raise ValueError("the change fails after its event")
    assert len(rows(recorded)) == 2 and token.heads == [1, 2]
    recorded.set_status("S1", "suspended", "lost card")  # the next change: head follows
    assert token.heads == [1, 2, 3] and rows(recorded)[-1]["index"] == 2


def test_a_bare_registry_records_no_events(registry: Registry, token: FakeToken) -> None:
    registry.begin_issuance("S1", "resident", new_record_code(), "131016", dt.date(2036, 1, 1))
    assert rows(registry) == [] and token.heads == []


def test_listing_filters_exactly_and_in_batches(recorded: Registry, token: FakeToken,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(event_list, "BATCH", 2)  # several batches
    for number in range(5):
        serial = f"S_{number}"  # an underscore: LIKE's wildcard must be escaped
        recorded.begin_issuance(serial, "resident", new_record_code(), "131016",
                                dt.date(2036, 1, 1))
    recorded.log_event(Event("operator-suspended", "r", subject_operator="alice"))
    db = recorded.connection()

    def listed(**query: object) -> list[int]:
        return [e.index for e in event_list.event_entries(db, event_list.EventQuery(**query))]  # type: ignore[arg-type]

    assert listed() == [0, 1, 2, 3, 4, 5]
    assert listed(card_serial="S_3") == [3] and listed(card_serial="S%3") == []
    assert listed(operator="alice") == [0, 1, 2, 3, 4, 5]  # who acted
    assert listed(operator="bob") == []  # alice as the subject is not bob acting either
    assert listed(event="operator-suspended") == [5]
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    assert listed(since=future) == [] and listed(since=future - dt.timedelta(days=2)) == listed()
    assert [e.index for e in event_list.event_entries(db, event_list.EventQuery(),
                                                      below=3)] == [0, 1, 2]


def test_since_is_an_iso_date_or_date_time_in_the_station_zone() -> None:
    assert event_list.parse_since("2026-12-03", "Asia/Tokyo") == dt.datetime(
        2026, 12, 2, 15, tzinfo=dt.UTC)
    assert event_list.parse_since("2026-12-03T10:00+00:00", "Asia/Tokyo") == dt.datetime(
        2026, 12, 3, 10, tzinfo=dt.UTC)
    for bad in ("yesterday", "2026-13-01", "03/12/2026", ""):
        with pytest.raises(RequestError, match="--since"):
            event_list.parse_since(bad, "Asia/Tokyo")


def test_incidental_information_is_proven_and_shows_no_values(
        recorded: Registry, token: FakeToken) -> None:
    code = new_record_code()
    recorded.begin_issuance("S1", "resident", code, "131016", dt.date(2036, 1, 1))
    recorded.complete_issuance("S1", b"cert")
    recorded.begin_issuance("S2", "resident", code, "131016", dt.date(2036, 1, 1),
                            reissue_of="S1")
    recorded.complete_issuance("S2", b"cert", supersedes="S1")
    recorded.log_event(Event("four-info-changed", "婚姻", resident_id=1, detail={
        "fields": "name", "date": "2026-12-01", "new_value": "must not show", "name": "x"}))
    recorded.log_event(Event("card-suspended", "other resident", resident_id=2))
    db = recorded.connection()
    size = log.size(db)
    root = log.root(db, size)
    found = event_list.incidental_information(log.entries_of_resident(db, 1), size, root,
                                              log.stored_subtree(db))
    assert [(i.event, i.reason) for i in found] == [("card-active", "reissue of S1"),
                                                    ("four-info-changed", "婚姻")]
    assert found[1].detail == {"fields": "name", "date": "2026-12-01"}
    assert all(i.proof_verified for i in found)
    entry = log.entry_at(db, found[1].index)
    assert entry is not None and merkle.verify_inclusion(
        found[1].index, size, entry.leaf, [bytes.fromhex(h) for h in found[1].inclusion_proof],
        root)
    wrong = event_list.incidental_information(log.entries_of_resident(db, 1), size,
                                              b"\0" * 32, log.stored_subtree(db))
    assert not any(i.proof_verified for i in wrong)


def test_recipient_table_event_names_file_digest_and_pairs(tmp_path: Path) -> None:
    from tools.audit import recipients

    data = b"x"
    event = recipients.table_event(tmp_path / "t.toml", data, ["A/1", "B/2"], "loaded t.toml")
    assert (event.event, event.reason) == ("recipient-table-changed", "loaded t.toml")
    assert event.detail == {"file": "t.toml", "sha256": hashlib.sha256(data).hexdigest(),
                            "added": "A/1, B/2"}


def test_key_created_events_name_role_and_version_of_created_keys_only() -> None:
    found = events.key_created_events([("juki/audit-entry-mac/v1", True),
                                       ("juki/operator-ca/v2", False),
                                       ("juki/cv-card-info-ca/v3", True)])
    assert [(e.event, dict(e.detail)) for e in found] == [
        ("key-created", {"role": "audit-entry-mac", "version": 1}),
        ("key-created", {"role": "cv-card-info-ca", "version": 3})]
    assert events.key_created_events([("juki/operator-ca/v1", False)]) == []
