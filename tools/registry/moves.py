"""Moves with the card (特例転出・特例転入) and changes to the 4 information: the
registry's half.

A move is recorded ``planned`` at the old municipality (move-out; the card stays valid);
the new municipality finds it at move-in and either completes it with the card
(``completed``: card rewritten) or, without the card, records the notification
(``moved-in``, the card's continued use due by ``continued_use_deadline``). A planned move
past its grace period is ``expired``; a moved-in one past its deadline ``lapsed``, and its
card ``expired`` with the reason. Every change appends its event in its own transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from .backend import Backend
from .events import Event
from .records import RegistryError, Row, now

OPEN_MOVES = ("planned", "moved-in")
IDENTITY_FIELDS = ("name", "name_kana", "birth_date", "sex", "address")


@dataclass(frozen=True)
class Move(Row):
    id: int
    resident_id: int
    card_serial: str | None
    from_municipality: str
    to_municipality: str
    planned_date: str
    reason: str
    status: str
    moved_in_date: str | None
    new_address: str | None  # identity information: shown to the move scope only
    notified_at: str | None
    continued_use_deadline: str | None
    continued_at: str | None
    created_at: str
    updated_at: str


MOVE_COLUMNS = ", ".join(f.name for f in fields(Move))


def _move(row: tuple[Any, ...]) -> Move:
    return Move(int(row[0]), int(row[1]), *row[2:])


def lapse_reason(days: int, moved_in: str) -> str:
    return f"lapsed: continued use not registered within {days} days of move-in ({moved_in})"


class MoveStore:
    """Mixed into ``Registry``: needs ``_db``, ``transaction()``, ``_log_event`` and
    ``_transition``."""

    _db: Backend

    def _log_event(self, db: Backend, event: Event) -> None:  # pragma: no cover - Registry's
        raise NotImplementedError

    def _transition(self, db: Backend, serial: str, to: str,
                    reason: str | None) -> str:  # pragma: no cover - Registry's
        raise NotImplementedError

    # ---- reading ----------------------------------------------------------------------

    def move(self, move_id: int) -> Move | None:
        row = self._db.execute(f"SELECT {MOVE_COLUMNS} FROM moves WHERE id = ?",
                               (move_id,)).fetchone()
        return _move(row) if row else None

    def moves_of(self, resident_id: int) -> list[Move]:
        rows = self._db.execute(f"SELECT {MOVE_COLUMNS} FROM moves WHERE resident_id = ? "
                                "ORDER BY id", (resident_id,))
        return [_move(r) for r in rows]

    def open_move_of(self, resident_id: int) -> Move | None:
        row = self._db.execute(f"SELECT {MOVE_COLUMNS} FROM moves WHERE resident_id = ? AND "
                               "status IN ('planned', 'moved-in')", (resident_id,)).fetchone()
        return _move(row) if row else None

    # ---- move-out -----------------------------------------------------------------------

    def record_move(self, resident_id: int, to_municipality: str, planned_date: dt.date,
                    reason: str) -> Move:
        """The planned move of the resident (move-out): from the municipality of their
        active card, to another one; refused while another move of theirs is open."""
        with self.transaction() as db:  # type: ignore[attr-defined]
            card = db.execute("SELECT serial, municipality_code, status FROM cards WHERE "
                              "resident_id = ? AND status IN ('issuing', 'active', 'suspended') "
                              "ORDER BY id DESC LIMIT 1", (resident_id,)).fetchone()
            if card is None or card[2] != "active":
                state = "no live card" if card is None else f"card {card[0]} {card[2]}"
                raise RegistryError(f"the resident holds {state}: moving with the card "
                                    "(特例転出) needs an active card")
            serial, origin = str(card[0]), str(card[1])
            if to_municipality == origin:
                raise RegistryError(f"the move goes to {to_municipality}, the municipality the "
                                    "card already names")
            found = db.execute("SELECT id, status FROM moves WHERE resident_id = ? AND status IN "
                               "('planned', 'moved-in')", (resident_id,)).fetchone()
            if found is not None:
                raise RegistryError(f"the resident already has an open move ({found[0]}, "
                                    f"{found[1]}): cancel or finish it first")
            stamp = now()
            move_id = int(db.execute(
                "INSERT INTO moves (resident_id, card_serial, from_municipality, to_municipality, "
                "planned_date, reason, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, "
                "'planned', ?, ?) RETURNING id",
                (resident_id, serial, origin, to_municipality, planned_date.isoformat(), reason,
                 stamp, stamp)).fetchone()[0])
            self._log_event(db, Event("move-out", reason, card_serial=serial,
                                      resident_id=resident_id, detail={
                                          "move": move_id, "date": planned_date.isoformat(),
                                          "from": origin, "to": to_municipality}))
        found_move = self.move(move_id)
        assert found_move is not None
        return found_move

    def cancel_move(self, move_id: int, reason: str) -> Move:
        """A planned move called off at the old municipality."""
        with self.transaction() as db:  # type: ignore[attr-defined]
            move = self._open_move(db, move_id, ("planned",))
            db.execute("UPDATE moves SET status = 'cancelled', updated_at = ? WHERE id = ?",
                       (now(), move_id))
            self._log_event(db, Event("move-cancelled", reason, card_serial=move.card_serial,
                                      resident_id=move.resident_id, detail={"move": move_id}))
        found = self.move(move_id)
        assert found is not None
        return found

    @staticmethod
    def _open_move(db: Backend, move_id: int, statuses: tuple[str, ...]) -> Move:
        row = db.execute(f"SELECT {MOVE_COLUMNS} FROM moves WHERE id = ?", (move_id,)).fetchone()
        if row is None:
            raise RegistryError(f"move {move_id} is not in the registry")
        move = _move(row)
        if move.status not in statuses:
            raise RegistryError(f"move {move_id} is {move.status}, not {' or '.join(statuses)}")
        return move

    # ---- deadlines ----------------------------------------------------------------------

    def expire_move(self, move_id: int, reason: str) -> None:
        """A planned move refused at move-in for a passed deadline (``reason`` names it)."""
        with self.transaction() as db:  # type: ignore[attr-defined]
            move = self._open_move(db, move_id, ("planned",))
            self._expire(db, move, reason)

    def _expire(self, db: Backend, move: Move, reason: str) -> None:
        db.execute("UPDATE moves SET status = 'expired', updated_at = ? WHERE id = ?",
                   (now(), move.id))
        self._log_event(db, Event("move-expired", reason, card_serial=move.card_serial,
                                  resident_id=move.resident_id, detail={"move": move.id}))

    def lapse_due(self, today: dt.date, move_out_grace_days: int = 30,
                  continued_use_days: int = 90) -> list[int]:
        """Planned moves past planned + grace → ``expired``; moved-in moves past their
        continued-use deadline → ``lapsed`` and their card ``expired`` (reason ``lapsed:
        …``). Returns the ids of the moves changed."""
        changed = []
        with self.transaction() as db:  # type: ignore[attr-defined]
            rows = db.execute(f"SELECT {MOVE_COLUMNS} FROM moves WHERE status IN "
                              "('planned', 'moved-in') ORDER BY id").fetchall()
            for move in map(_move, rows):
                if move.card_serial is not None and db.execute(
                        "SELECT 1 FROM card_operations WHERE card_serial = ? AND status IN "
                        "('pending', 'interrupted')", (move.card_serial,)).fetchone():
                    continue  # its move-in is being written (or recovered): settle that first
                if move.status == "planned":
                    last = dt.date.fromisoformat(move.planned_date) + dt.timedelta(
                        days=move_out_grace_days)
                    if today > last:
                        self._expire(db, move, f"not moved in by {last} (planned "
                                               f"{move.planned_date} + move_out_grace_days "
                                               f"{move_out_grace_days})")
                        changed.append(move.id)
                elif move.continued_use_deadline and today.isoformat() > move.continued_use_deadline:
                    self._lapse(db, move, continued_use_days)
                    changed.append(move.id)
        return changed

    def _lapse(self, db: Backend, move: Move, days: int) -> None:
        reason = lapse_reason(days, move.moved_in_date or "?")
        db.execute("UPDATE moves SET status = 'lapsed', updated_at = ? WHERE id = ?",
                   (now(), move.id))
        if move.card_serial is not None:
            status = db.execute("SELECT status FROM cards WHERE serial = ? ORDER BY id DESC "
                                "LIMIT 1", (move.card_serial,)).fetchone()
            if status is not None and status[0] in ("active", "suspended"):
                self._transition(db, move.card_serial, "expired", reason)
                # unlike a card past its expiry, a lapsed card's certificates are still
                # within their validity: a relying party must find them on the CRL
                self.revoke_certificates(db, reason="lapsed",  # type: ignore[attr-defined]
                                         card_serial=move.card_serial)
        self._log_event(db, Event("move-lapsed", reason, card_serial=move.card_serial,
                                  resident_id=move.resident_id, detail={
                                      "move": move.id,
                                      "deadline": move.continued_use_deadline}))

    # ---- inside the transaction of a counter operation ---------------------------------

    def record_event(self, db: Backend, event: Event) -> None:
        """``event`` with the change of the caller's transaction (操作履歴)."""
        self._log_event(db, event)

    def update_identity(self, db: Backend, resident_id: int, identity: Mapping[str, Any],
                        card_serial: str | None = None,
                        municipality_code: str | None = None) -> None:
        """The resident's 4 information (and kana) as the card now holds them; with
        ``card_serial``, that card's municipality too (its latest row)."""
        values = tuple(identity.get(k) for k in IDENTITY_FIELDS)
        cursor = db.execute("UPDATE resident_identity SET name = ?, name_kana = ?, "
                            "birth_date = ?, sex = ?, address = ?, updated_at = ? "
                            "WHERE resident_id = ?", (*values, now(), resident_id))
        if cursor.rowcount == 0:
            db.execute("INSERT INTO resident_identity (resident_id, name, name_kana, birth_date, "
                       "sex, address, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (resident_id, *values, now()))
        if card_serial is not None and municipality_code is not None:
            db.execute("UPDATE cards SET municipality_code = ?, updated_at = ? WHERE id = "
                       "(SELECT id FROM cards WHERE serial = ? ORDER BY id DESC LIMIT 1)",
                       (municipality_code, now(), card_serial))

    def notify_move_in(self, db: Backend, move_id: int, moved_in: dt.date, new_address: str,
                       continued_use_days: int) -> Move:
        """The move-in notified without the card: ``moved-in``, the card's continued use
        due ``continued_use_days`` after ``moved_in``."""
        move = self._open_move(db, move_id, ("planned",))
        deadline = moved_in + dt.timedelta(days=continued_use_days)
        stamp = now()
        db.execute("UPDATE moves SET status = 'moved-in', moved_in_date = ?, new_address = ?, "
                   "notified_at = ?, continued_use_deadline = ?, updated_at = ? WHERE id = ?",
                   (moved_in.isoformat(), new_address, stamp, deadline.isoformat(), stamp,
                    move_id))
        return move

    def complete_move(self, db: Backend, move_id: int, moved_in: dt.date | None = None,
                      new_address: str | None = None) -> Move:
        """The card rewritten: ``completed``. From ``planned`` (move-in with the card:
        ``moved_in`` and ``new_address`` given) or ``moved-in`` (continued use)."""
        move = self._open_move(db, move_id, OPEN_MOVES)
        stamp = now()
        if move.status == "planned":
            if moved_in is None or new_address is None:
                raise RegistryError(f"move {move_id}: completing a planned move needs the "
                                    "move-in date and the new address")
            db.execute("UPDATE moves SET status = 'completed', moved_in_date = ?, "
                       "new_address = ?, notified_at = ?, continued_at = ?, updated_at = ? "
                       "WHERE id = ?", (moved_in.isoformat(), new_address, stamp, stamp, stamp,
                                        move_id))
        else:
            db.execute("UPDATE moves SET status = 'completed', continued_at = ?, updated_at = ? "
                       "WHERE id = ?", (stamp, stamp, move_id))
        return move
