"""The card registry (SQLite in the station home), with versioned migrations.

A card row is written as ``issuing`` before the first personalisation APDU and only
becomes ``active`` after the card is locked; a failure marks it ``failed``. So there
is never an ``active`` row without a finished card.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

MIGRATIONS: list[str] = [
    """
    CREATE TABLE cards (
        serial TEXT PRIMARY KEY,
        profile TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('issuing', 'active', 'failed')),
        resident_code TEXT,
        municipality_code TEXT,
        expiry TEXT,
        certificate BLOB,
        failure TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX cards_resident_code ON cards(resident_code);
    """,
]


@dataclass(frozen=True)
class CardRecord:
    serial: str
    profile: str
    status: str
    resident_code: str | None
    municipality_code: str | None
    expiry: str | None
    certificate: bytes | None
    failure: str | None
    created_at: str
    updated_at: str

    def as_json(self) -> dict[str, object]:
        data = dict(vars(self))
        data["certificate"] = self.certificate is not None
        return data


CARD_COLUMNS = ", ".join(CardRecord.__dataclass_fields__)  # same order as the dataclass


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class Registry:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self.migrate()

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def migrate(self) -> int:
        current = self._db.execute("PRAGMA user_version").fetchone()[0]
        for index in range(current, len(MIGRATIONS)):
            with self.transaction() as db:
                for statement in filter(str.strip, MIGRATIONS[index].split(";")):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {index + 1}")
        return len(MIGRATIONS)

    def get(self, serial: str) -> CardRecord | None:
        row = self._db.execute(f"SELECT {CARD_COLUMNS} FROM cards WHERE serial = ?",
                               (serial,)).fetchone()
        return CardRecord(*row) if row else None

    def list(self) -> list[CardRecord]:
        rows = self._db.execute(
            f"SELECT {CARD_COLUMNS} FROM cards ORDER BY created_at, serial").fetchall()
        return [CardRecord(*row) for row in rows]

    def begin_issuance(self, serial: str, profile: str, resident_code: str,
                       municipality_code: str, expiry: dt.date) -> None:
        """Record the card as ``issuing``; a previous ``failed`` attempt is replaced."""
        now = _now()
        with self.transaction() as db:
            existing = db.execute("SELECT status FROM cards WHERE serial = ?", (serial,)).fetchone()
            if existing and existing[0] != "failed":
                raise ValueError(f"card {serial} is already registered ({existing[0]})")
            db.execute("DELETE FROM cards WHERE serial = ? AND status = 'failed'", (serial,))
            db.execute(
                "INSERT INTO cards (serial, profile, status, resident_code, municipality_code,"
                " expiry, created_at, updated_at) VALUES (?, ?, 'issuing', ?, ?, ?, ?, ?)",
                (serial, profile, resident_code, municipality_code, expiry.isoformat(), now, now),
            )

    def complete_issuance(self, serial: str, certificate_der: bytes) -> None:
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE cards SET status = 'active', certificate = ?, updated_at = ?"
                " WHERE serial = ? AND status = 'issuing'",
                (certificate_der, _now(), serial),
            )
            if cursor.rowcount != 1:
                raise ValueError(f"card {serial} is not being issued")

    def mark_failed(self, serial: str, reason: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE cards SET status = 'failed', failure = ?, updated_at = ?"
                " WHERE serial = ? AND status = 'issuing'",
                (reason[:500], _now(), serial),
            )
