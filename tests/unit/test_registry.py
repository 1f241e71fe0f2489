"""The registry's rules, on a SQLite file."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from cardlib.checkdigits import is_valid_resident_code
from tools.registry import Registry, RegistryError, new_record_code
from tools.registry.schema import MIGRATIONS, statements_for

EXPIRY = dt.date(2036, 1, 1)



def issue(registry: Registry, serial: str, code: str, reissue_of: str | None = None) -> None:
    registry.begin_issuance(serial, "resident", code, "131016", EXPIRY, reissue_of=reissue_of)
    registry.complete_issuance(serial, b"cert", supersedes=reissue_of)


def test_life_cycle_transitions(registry: Registry) -> None:
    code = new_record_code()
    issue(registry, "100000000000001", code)
    assert registry.set_status("100000000000001", "suspended", "investigation") == "active"
    with pytest.raises(RegistryError, match="cannot become suspended"):
        registry.set_status("100000000000001", "suspended", "again")
    registry.set_status("100000000000001", "active")
    with pytest.raises(RegistryError, match="reason must be one of"):
        registry.set_status("100000000000001", "revoked", "bored")
    registry.set_status("100000000000001", "revoked", "lost")
    with pytest.raises(RegistryError, match="revoked: it cannot become active"):
        registry.set_status("100000000000001", "active")
    events = [(e.from_status, e.to_status) for e in registry.events("100000000000001")]
    assert events == [(None, "issuing"), ("issuing", "active"), ("active", "suspended"),
                      ("suspended", "active"), ("active", "revoked")]


def test_one_live_card_per_resident_and_reissue(registry: Registry) -> None:
    code = new_record_code()
    issue(registry, "100000000000001", code)
    with pytest.raises(RegistryError, match="already holds card 100000000000001"):
        registry.begin_issuance("100000000000002", "resident", code, "131016", EXPIRY)
    issue(registry, "100000000000002", code, reissue_of="100000000000001")
    old, new = registry.get("100000000000001"), registry.get("100000000000002")
    assert (old.status, old.status_reason) == ("revoked", "superseded")
    assert new.status == "active" and new.resident_id == old.resident_id


def test_precheck_refuses_duplicates_and_writes_nothing(registry: Registry) -> None:
    code = new_record_code()
    registry.check_can_issue(code)
    assert registry.resident_of_code(code) is None  # the check kept nothing
    issue(registry, "100000000000001", code)
    with pytest.raises(RegistryError, match="already holds card"):
        registry.check_can_issue(code)
    registry.check_can_issue(code, reissue_of="100000000000001")


def test_failed_issuance_can_be_retried_on_the_same_card(registry: Registry) -> None:
    code = new_record_code()
    registry.begin_issuance("100000000000001", "resident", code, "131016", EXPIRY)
    registry.mark_failed("100000000000001", "card removed")
    assert registry.unfinished() == []
    issue(registry, "100000000000001", code)
    assert registry.get("100000000000001").status == "active"
    assert [c.status for c in registry.list()] == ["failed", "active"]  # history kept


def test_code_change_retires_for_good(registry: Registry) -> None:
    code = new_record_code()
    issue(registry, "100000000000001", code)
    resident, new = registry.reserve_new_code(code)
    assert is_valid_resident_code(new) and new != code
    registry.commit_code_change(resident, code, new, "本人の請求")
    assert registry.active_code(resident) == new
    assert registry.resident_of_code(code) == (resident, "retired")
    with pytest.raises(RegistryError, match="retired: it can never be used again"):
        registry.begin_issuance("100000000000002", "resident", code, "131016", EXPIRY)
    _, abandoned = registry.reserve_new_code(new)
    registry.abandon_code(abandoned)
    assert registry.resident_of_code(abandoned) == (resident, "abandoned")
    assert registry.active_code(resident) == new


def test_expiry(registry: Registry) -> None:
    issue(registry, "100000000000001", new_record_code())
    assert registry.expire_due(dt.date(2035, 12, 31)) == []
    assert registry.expire_due(dt.date(2036, 1, 2)) == ["100000000000001"]
    assert registry.get("100000000000001").status == "expired"


def test_migration_from_the_skeleton_schema_keeps_cards(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    for statement in statements_for("sqlite", 0):
        db.execute(statement)
    db.execute("PRAGMA user_version = 1")
    db.execute("INSERT INTO cards VALUES ('100000000000009', 'resident', 'active', '28374650191',"
               " '131016', '2036-01-01', x'00', NULL, '2026-01-01', '2026-01-01')")
    db.commit()
    db.close()
    registry = Registry(path)
    assert registry.schema_version() == len(MIGRATIONS)
    card = registry.get("100000000000009")
    assert card is not None and card.status == "active" and card.certificate == b"\x00"
