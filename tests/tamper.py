"""Tampering with the provision log as someone holding the database owner's rights
(or a superuser's) would: on PostgreSQL, migration 8's append-only triggers refuse
UPDATE, DELETE and TRUNCATE of the log's tables to every role, so such an attacker first
switches them off (only a table's owner or a superuser can). The tests of what
`audit verify` detects use this to make their edits; SQLite has no such triggers.

    with registry.transaction() as db, tampering(db):
        db.execute("DELETE FROM provision_log WHERE idx >= 6")
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tools.registry.backend import Backend
from tools.registry.pg_rules import APPEND_ONLY


@contextmanager
def tampering(db: Backend) -> Iterator[Backend]:
    """The append-only triggers off inside the caller's transaction, on again before it
    commits (the edit is committed, the triggers stay as they were)."""
    if db.dialect != "postgresql":
        yield db
        return
    for table in APPEND_ONLY:
        db.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
    yield db
    for table in APPEND_ONLY:
        db.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
