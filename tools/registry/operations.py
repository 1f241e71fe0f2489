"""The journal of operations on issued cards (move-in, 4-information change, PIN reset,
renewal): the registry's half of their atomicity.

An operation is written ``pending`` (with its owner host:pid and everything needed to
finish it, never a secret) before the first APDU to the card, and ``done`` in the same
transaction as the registry change it makes. A failure in between marks it
``interrupted``; so does its owner's death (found by ``juki issue recover``, which
finishes it or rolls it back). A card has at most one open operation: a second one
is refused until the first is settled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .backend import Backend
from .events import Event
from .records import RegistryError, now

OPEN = ("pending", "interrupted")
_COLUMNS = "id, card_serial, kind, status, payload, owner, failure, started_at, finished_at"


@dataclass(frozen=True)
class CardOperation:
    id: int
    card_serial: str
    kind: str
    status: str
    payload: dict[str, Any]
    owner: str | None
    failure: str | None
    started_at: str
    finished_at: str | None

    def as_json(self) -> dict[str, Any]:
        return dict(vars(self))


def _operation(row: tuple[Any, ...]) -> CardOperation:
    return CardOperation(int(row[0]), str(row[1]), str(row[2]), str(row[3]), json.loads(row[4]),
                         row[5], row[6], str(row[7]), row[8])


class OperationStore:
    """Mixed into ``Registry``: needs ``_db``, ``transaction()`` and ``_log_event``."""

    _db: Backend

    def _log_event(self, db: Backend, event: Event) -> None:  # pragma: no cover - Registry's
        raise NotImplementedError

    def operation(self, operation_id: int) -> CardOperation | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM card_operations WHERE id = ?",
                               (operation_id,)).fetchone()
        return _operation(row) if row else None

    def open_operations(self) -> list[CardOperation]:
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM card_operations WHERE status IN "
                                "('pending', 'interrupted') ORDER BY id")
        return [_operation(r) for r in rows]

    def open_operation_of(self, card_serial: str) -> CardOperation | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM card_operations WHERE card_serial = ? "
                               "AND status IN ('pending', 'interrupted')", (card_serial,)).fetchone()
        return _operation(row) if row else None

    def begin_operation(self, card_serial: str, kind: str, payload: dict[str, Any],
                        owner: str | None) -> int:
        """Journal an operation before its first card write; refused while the card has
        another open one (finish or roll it back first: `juki issue recover`)."""
        with self.transaction() as db:  # type: ignore[attr-defined]
            return self.begin_operation_in(db, card_serial, kind, payload, owner)

    def begin_operation_in(self, db: Backend, card_serial: str, kind: str,
                           payload: dict[str, Any], owner: str | None) -> int:
        """``begin_operation`` inside the caller's transaction (with its rule checks)."""
        row = db.execute("SELECT id, kind, status FROM card_operations WHERE card_serial = ? "
                         "AND status IN ('pending', 'interrupted')", (card_serial,)).fetchone()
        if row is not None:
            raise RegistryError(f"card {card_serial} has an unfinished {row[1]} (operation "
                                f"{row[0]}, {row[2]}): finish or roll it back with "
                                "`juki issue recover` first")
        return int(db.execute(
            "INSERT INTO card_operations (card_serial, kind, status, payload, owner, started_at) "
            "VALUES (?, ?, 'pending', ?, ?, ?) RETURNING id",
            (card_serial, kind, json.dumps(payload, sort_keys=True, ensure_ascii=False), owner,
             now())).fetchone()[0])

    def settle_operation(self, db: Backend, operation_id: int, status: str = "done") -> None:
        """Close an open operation (``done`` or ``rolled-back``) inside the caller's
        transaction: the one that makes (or undoes) its registry change."""
        if status not in ("done", "rolled-back"):
            raise ValueError(status)
        cursor = db.execute("UPDATE card_operations SET status = ?, finished_at = ? WHERE id = ? "
                            "AND status IN ('pending', 'interrupted')",
                            (status, now(), operation_id))
        if cursor.rowcount != 1:
            raise RegistryError(f"operation {operation_id} is not open")

    def interrupt_operation(self, operation_id: int, failure: str) -> None:
        """The operation failed part-way (or its owner is gone): the card may hold part of
        it. Recorded with an event; `juki issue recover` finishes or rolls it back."""
        with self.transaction() as db:  # type: ignore[attr-defined]
            row = db.execute("SELECT card_serial, kind FROM card_operations WHERE id = ? AND "
                             "status = 'pending'", (operation_id,)).fetchone()
            if row is None:
                return
            db.execute("UPDATE card_operations SET status = 'interrupted', failure = ? WHERE id = ?",
                       (failure[:500], operation_id))
            self._log_event(db, Event("operation-interrupted", failure[:200], card_serial=row[0],
                                      detail={"operation": operation_id, "kind": row[1]}))
