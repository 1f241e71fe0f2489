"""A resident's entries are found by index, on SQLite and PostgreSQL: the ``resident_id``
column's index and the expression index on the resident the entry itself names
(migration 7), never a scan of the log; an entry re-attributed in either direction
(column moved away, or column moved onto the resident) is still found and refused."""

from __future__ import annotations

from typing import Any

import pytest

from tools.audit import log
from tools.errors import LogTamperedError
from tools.registry import Registry

ROWS = 20_000
RESIDENTS = 1_000


def fill(registry: Registry) -> None:
    rows = [(i, log.canonical({"resident_id": i % RESIDENTS, "station": "s", "index": i,
                               "kind": "provision"}).decode(), "provision", i % RESIDENTS,
             b"", 1) for i in range(ROWS)]
    with registry.transaction() as db:
        db.executemany("INSERT INTO provision_log (idx, entry, kind, resident_id, mac, "
                       "mac_version) VALUES (?, ?, ?, ?, ?, ?)", rows)
    registry.connection().execute("ANALYZE")


def plan(db: Any, resident_id: int) -> str:
    sql, params = log.resident_query(db, resident_id)
    prefix = "EXPLAIN QUERY PLAN " if db.dialect == "sqlite" else "EXPLAIN "
    return "\n".join(str(row[-1] if db.dialect == "sqlite" else row[0])
                     for row in db.execute(prefix + sql, params))


def test_the_query_uses_both_indexes_and_never_scans(registry: Registry) -> None:
    fill(registry)
    text = plan(registry.connection(), 42)
    assert "provision_log_resident" in text and "provision_log_said_resident" in text, text
    assert "SCAN provision_log" not in text and "Seq Scan" not in text, text
    found = log.entries_of_resident(registry.connection(), 42)
    assert [e.index for e in found] == list(range(42, ROWS, RESIDENTS))


def _as_superuser(db: Any) -> None:
    if db.dialect == "postgresql":
        db.execute("SET LOCAL session_replication_role = replica")


@pytest.mark.parametrize("column", [None, 7, 43])
def test_an_entry_moved_off_the_resident_is_still_found(registry: Registry,
                                                        column: int | None) -> None:
    fill(registry)
    with registry.transaction() as db:
        _as_superuser(db)
        db.execute("UPDATE provision_log SET resident_id = ? WHERE idx = ?", (column, 1042))
    with pytest.raises(LogTamperedError, match="entry 1042 names resident 42 but its "
                                               f"resident_id column says {column}"):
        log.entries_of_resident(registry.connection(), 42)


def test_an_entry_moved_onto_the_resident_is_refused(registry: Registry) -> None:
    fill(registry)
    with registry.transaction() as db:
        _as_superuser(db)
        db.execute("UPDATE provision_log SET resident_id = 42 WHERE idx = 5")
    with pytest.raises(LogTamperedError, match="entry 5 names resident 5 but its "
                                               "resident_id column says 42"):
        log.entries_of_resident(registry.connection(), 42)
    assert [e.index for e in log.entries_of_resident(registry.connection(), 43)][:2] == [43, 1043]
