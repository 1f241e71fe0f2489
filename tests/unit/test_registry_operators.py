"""Operator rules of the registry, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

from tools.registry import Registry, RegistryError

WINDOW = dt.timedelta(minutes=15)



def enrol(registry: Registry, operator_id: str, guid: str, scopes: set[str] | None = None,
          unix_user: str | None = None) -> None:
    registry.begin_enrolment(operator_id, f"Name {operator_id}", "131016",
                             frozenset(scopes or {"verify"}), unix_user, guid, "admin")
    registry.complete_enrolment(operator_id, b"certificate", "admin")


def test_enrolment_and_life_cycle(registry: Registry) -> None:
    enrol(registry, "op1", "AA" * 16, {"issue", "verify"})
    record = registry.operator("op1")
    assert record is not None and record.status == "active"
    assert record.scope_set == {"issue", "verify"} and record.scopes == "issue,verify"
    assert registry.set_operator_status("op1", "suspended", "leave", "admin") == "active"
    with pytest.raises(RegistryError, match="cannot become suspended"):
        registry.set_operator_status("op1", "suspended", None, "admin")
    registry.set_operator_status("op1", "revoked", "left", "admin")
    with pytest.raises(RegistryError, match="cannot become active"):
        registry.set_operator_status("op1", "active", None, "admin")
    events = [e["event"] for e in registry.operator_events("op1")]
    assert events == ["enrolling", "enrolled", "suspended", "revoked"]


def test_operator_id_is_never_reused_and_a_card_has_one_live_operator(registry: Registry) -> None:
    enrol(registry, "op1", "AA" * 16)
    with pytest.raises(RegistryError, match="already exists"):
        registry.begin_enrolment("op1", "X", "131016", frozenset({"verify"}), None, "BB" * 16, None)
    with pytest.raises(RegistryError, match="belongs to operator op1"):
        registry.begin_enrolment("op2", "X", "131016", frozenset({"verify"}), None, "AA" * 16, None)
    registry.set_operator_status("op1", "revoked", "left", None)
    with pytest.raises(RegistryError, match="never reused"):
        registry.begin_enrolment("op1", "X", "131016", frozenset({"verify"}), None, "CC" * 16, None)
    enrol(registry, "op2", "AA" * 16)  # the revoked operator's card may be enrolled again


def test_failed_enrolment_is_taken_over(registry: Registry) -> None:
    registry.begin_enrolment("op1", "X", "131016", frozenset({"verify"}), None, "AA" * 16, None)
    registry.fail_enrolment("op1", "card removed")
    assert registry.operator("op1").status == "failed"  # type: ignore[union-attr]
    enrol(registry, "op1", "AA" * 16, {"issue"})
    assert registry.operator("op1").scope_set == {"issue"}  # type: ignore[union-attr]
    with pytest.raises(RegistryError, match="not being enrolled"):
        registry.complete_enrolment("op1", b"again", None)


def test_unix_user_maps_to_one_operator(registry: Registry) -> None:
    enrol(registry, "op1", "AA" * 16, unix_user="hanako")
    assert registry.operator_of_unix_user("hanako").operator_id == "op1"  # type: ignore[union-attr]
    with pytest.raises(RegistryError, match="mapped to op1"):
        registry.begin_enrolment("op2", "X", "131016", frozenset({"verify"}), "hanako", "BB" * 16,
                                 None)
    assert registry.operator_of_unix_user("taro") is None


def test_lockout_counts_failures_in_the_window_and_unlock_clears(registry: Registry) -> None:
    enrol(registry, "op1", "AA" * 16)
    old = (dt.datetime.now(dt.UTC) - 2 * WINDOW).isoformat(timespec="seconds")
    with registry.transaction() as db:
        for _ in range(5):
            db.execute("INSERT INTO login_failures (operator_id, at, reason) VALUES (?, ?, ?)",
                       ("op1", old, "old"))
    assert not registry.record_login_failure("op1", "wrong PIN", limit=3, window=WINDOW)
    assert not registry.record_login_failure("op1", "wrong PIN", limit=3, window=WINDOW)
    assert registry.record_login_failure("op1", "wrong PIN", limit=3, window=WINDOW)
    assert registry.operator("op1").locked_at is not None  # type: ignore[union-attr]
    registry.unlock_operator("op1", "admin")
    assert registry.operator("op1").locked_at is None  # type: ignore[union-attr]
    assert not registry.record_login_failure("op1", "wrong PIN", limit=3, window=WINDOW)


def test_successful_login_resets_the_count(registry: Registry) -> None:
    enrol(registry, "op1", "AA" * 16)
    for _ in range(2):
        registry.record_login_failure("op1", "wrong PIN", limit=3, window=WINDOW)
    registry.record_login("op1", "station-a")
    for _ in range(2):
        assert not registry.record_login_failure("op1", "wrong PIN", limit=3, window=WINDOW)


def test_denials_are_recorded_and_admins_found(registry: Registry) -> None:
    assert not registry.has_active_admin()
    enrol(registry, "admin", "AA" * 16, {"operator-admin"})
    assert registry.has_active_admin()
    registry.record_denial("station-a", None, "card list", "verify", "no session")
    registry.record_denial("station-a", "admin", "card code", "read-code", "lacks scope")
    assert [(d.operator_id, d.command) for d in registry.denials()] == [
        (None, "card list"), ("admin", "card code")]


def test_one_current_session_per_station(registry: Registry) -> None:
    enrol(registry, "op1", "AA" * 16)
    enrol(registry, "op2", "BB" * 16)
    assert registry.current_session_id("st-1") is None
    registry.record_login("op1", "st-1", "s1")
    registry.record_login("op2", "st-2", "s2")
    registry.record_login("op2", "st-1", "s3")  # a newer login replaces the station's session
    assert registry.current_session_id("st-1") == "s3"
    assert registry.current_session_id("st-2") == "s2"
    registry.end_station_session("st-1", "op2")
    assert registry.current_session_id("st-1") is None
    assert registry.operator_events("op2")[-1]["event"] == "logout"
