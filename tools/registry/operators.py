"""Operators in the registry: enrolment, life cycle, failed logins and lock-out, and
the record of every denied command.

Life cycle: enrolling → active | failed; active ⇄ suspended; active/suspended → revoked.
An operator ID is never reused once revoked. Lock-out is separate from the life cycle:
``locked_at`` is set when failed logins in the window reach the limit (SoftHSM never
locks anything, so the application must) and cleared only by an administrator.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from .backend import Backend
from .events import Event
from .records import OPERATOR_COLUMNS, Denial, OperatorRecord, RegistryError, now
from .schema import CERTIFICATE_REVOKE_REASONS

# An operator revoked for a reason of its own (free text) has its certificates revoked
# as "returned" (CRL cessationOfOperation); a registry reason (lost, stolen …) is kept.
OPERATOR_CERTIFICATE_REASON = "returned"

# 操作履歴 names of the operator_events rows that are not one word already
OPERATOR_EVENT_NAMES = {"active": "resumed", "enrolment failed": "enrolment-failed",
                        "PIN reset with PUK": "unblocked"}

OPERATOR_TRANSITIONS = {
    "suspended": {"active"},
    "active": {"suspended"},
    "revoked": {"active", "suspended"},
}


class OperatorStore:
    """Mixed into ``Registry``: needs ``_db``, ``transaction()`` and ``RegistryError``."""

    _db: Backend

    def _error(self, message: str) -> Exception:
        return RegistryError(message)

    def _log_event(self, db: Backend, event: Event) -> None:  # pragma: no cover - Registry's
        raise NotImplementedError

    # ---- reading ------------------------------------------------------------------------

    def operator(self, operator_id: str) -> OperatorRecord | None:
        row = self._db.execute(f"SELECT {OPERATOR_COLUMNS} FROM operators WHERE operator_id = ?",
                               (operator_id,)).fetchone()
        return OperatorRecord(*row) if row else None

    def operator_of_unix_user(self, user: str) -> OperatorRecord | None:
        row = self._db.execute(f"SELECT {OPERATOR_COLUMNS} FROM operators WHERE unix_user = ?",
                               (user,)).fetchone()
        return OperatorRecord(*row) if row else None

    def operators(self, status: str | None = None) -> list[OperatorRecord]:
        query, args = f"SELECT {OPERATOR_COLUMNS} FROM operators", ()
        if status:
            query, args = query + " WHERE status = ?", (status,)
        return [OperatorRecord(*r) for r in self._db.execute(query + " ORDER BY operator_id", args)]

    def operator_events(self, operator_id: str) -> list[dict[str, str | None]]:
        rows = self._db.execute("SELECT at, event, detail, actor FROM operator_events WHERE "
                                "operator_id = ? ORDER BY id", (operator_id,))
        return [dict(zip(("at", "event", "detail", "actor"), r, strict=True)) for r in rows]

    def denials(self) -> list[Denial]:
        rows = self._db.execute("SELECT at, station, operator_id, command, scope, reason "
                                "FROM access_denials ORDER BY id")
        return [Denial(*r) for r in rows]

    def has_active_admin(self) -> bool:
        return any("operator-admin" in op.scope_set for op in self.operators("active"))

    # ---- enrolment and life cycle -----------------------------------------------------------

    def _operator_event(self, db: Backend, operator_id: str, event: str,
                        detail: str | None = None, actor: str | None = None) -> None:
        db.execute("INSERT INTO operator_events (operator_id, at, event, detail, actor) "
                   "VALUES (?, ?, ?, ?, ?)", (operator_id, now(), event, detail, actor))
        self._log_event(db, Event(f"operator-{OPERATOR_EVENT_NAMES.get(event, event)}", detail,
                                  subject_operator=operator_id))

    def begin_enrolment(self, operator_id: str, name: str, municipality_code: str,
                        scopes: frozenset[str], unix_user: str | None, card_guid: str,
                        actor: str | None) -> None:
        """Reserve the operator ID and the card (``enrolling``); a failed or interrupted
        enrolment of the same ID is taken over, any other existing ID is refused."""
        with self.transaction() as db:  # type: ignore[attr-defined]
            row = db.execute("SELECT status FROM operators WHERE operator_id = ?",
                             (operator_id,)).fetchone()
            if row is not None and row[0] not in ("failed", "enrolling"):
                raise self._error(f"operator {operator_id} already exists ({row[0]}); "
                                  "an operator ID is never reused")
            holder = db.execute("SELECT operator_id FROM operators WHERE card_guid = ? AND status "
                                "IN ('enrolling', 'active', 'suspended') AND operator_id <> ?",
                                (card_guid, operator_id)).fetchone()
            if holder is not None:
                raise self._error(f"card {card_guid} belongs to operator {holder[0]}")
            if unix_user is not None:
                user_row = db.execute("SELECT operator_id FROM operators WHERE unix_user = ? "
                                      "AND operator_id <> ?", (unix_user, operator_id)).fetchone()
                if user_row is not None:
                    raise self._error(f"login name {unix_user} is mapped to {user_row[0]}")
            stamp = now()
            values = (name, municipality_code, ",".join(sorted(scopes)), unix_user, card_guid)
            if row is None:
                db.execute("INSERT INTO operators (operator_id, name, municipality_code, scopes, "
                           "status, unix_user, card_guid, created_at, updated_at) VALUES "
                           "(?, ?, ?, ?, 'enrolling', ?, ?, ?, ?)",
                           (operator_id, *values, stamp, stamp))
            else:
                db.execute("UPDATE operators SET name = ?, municipality_code = ?, scopes = ?, "
                           "unix_user = ?, card_guid = ?, status = 'enrolling', certificate = NULL, "
                           "status_reason = NULL, updated_at = ? WHERE operator_id = ?",
                           (*values, stamp, operator_id))
            self._operator_event(db, operator_id, "enrolling", f"card {card_guid}", actor)

    def complete_enrolment(self, operator_id: str, certificate_der: bytes,
                           actor: str | None, certificates: tuple[Any, ...] = ()) -> None:
        """``enrolling`` → ``active``; ``certificates`` (``IssuedCertificate``s of kind
        ``operator``) are recorded in the same transaction (for the operator CA's CRL)."""
        with self.transaction() as db:  # type: ignore[attr-defined]
            cursor = db.execute("UPDATE operators SET status = 'active', certificate = ?, "
                                "updated_at = ? WHERE operator_id = ? AND status = 'enrolling'",
                                (certificate_der, now(), operator_id))
            if cursor.rowcount != 1:
                raise self._error(f"operator {operator_id} is not being enrolled")
            for issued in certificates:
                self.record_certificate(db, issued, operator_id=operator_id)  # type: ignore[attr-defined]
            self._operator_event(db, operator_id, "enrolled", None, actor)

    def fail_enrolment(self, operator_id: str, reason: str) -> None:
        with self.transaction() as db:  # type: ignore[attr-defined]
            db.execute("UPDATE operators SET status = 'failed', status_reason = ?, updated_at = ? "
                       "WHERE operator_id = ? AND status = 'enrolling'",
                       (reason, now(), operator_id))
            self._operator_event(db, operator_id, "enrolment failed", reason)

    def set_operator_status(self, operator_id: str, to: str, reason: str | None,
                            actor: str | None) -> str:
        with self.transaction() as db:  # type: ignore[attr-defined]
            row = db.execute("SELECT status FROM operators WHERE operator_id = ?",
                             (operator_id,)).fetchone()
            if row is None:
                raise self._error(f"no operator {operator_id}")
            before = str(row[0])
            if before not in OPERATOR_TRANSITIONS.get(to, set()):
                raise self._error(f"operator {operator_id} is {before}: cannot become {to}")
            db.execute("UPDATE operators SET status = ?, status_reason = ?, updated_at = ? "
                       "WHERE operator_id = ?", (to, reason, now(), operator_id))
            self._operator_event(db, operator_id, to, reason, actor)
            if to == "revoked":
                certificate_reason = (reason if reason in CERTIFICATE_REVOKE_REASONS
                                      else OPERATOR_CERTIFICATE_REASON)
                self.revoke_certificates(db, reason=certificate_reason,  # type: ignore[attr-defined]
                                         operator_id=operator_id)
            return before

    # ---- logins ---------------------------------------------------------------------------

    def record_login_failure(self, operator_id: str, reason: str, *, limit: int,
                             window: dt.timedelta) -> bool:
        """Count a failed login; lock the operator when ``limit`` failures fall within
        ``window``. Returns True if the operator is (now) locked."""
        with self.transaction() as db:  # type: ignore[attr-defined]
            stamp = now()
            db.execute("INSERT INTO login_failures (operator_id, at, reason) VALUES (?, ?, ?)",
                       (operator_id, stamp, reason))
            since = (dt.datetime.now(dt.UTC) - window).isoformat(timespec="seconds")
            count = db.execute("SELECT count(*) FROM login_failures WHERE operator_id = ? "
                               "AND at >= ?", (operator_id, since)).fetchone()[0]
            row = db.execute("SELECT locked_at FROM operators WHERE operator_id = ?",
                             (operator_id,)).fetchone()
            if row is None:
                return False
            if row[0] is None and count >= limit:
                db.execute("UPDATE operators SET locked_at = ? WHERE operator_id = ?",
                           (stamp, operator_id))
                self._operator_event(db, operator_id, "locked",
                                     f"{count} failed logins within {window}")
                return True
            return row[0] is not None

    def record_login(self, operator_id: str, station: str, session_id: str | None = None) -> None:
        """A successful login clears the failure count; with ``session_id`` it becomes the
        station's one current session (a session file copied back later is refused)."""
        with self.transaction() as db:  # type: ignore[attr-defined]
            db.execute("DELETE FROM login_failures WHERE operator_id = ?", (operator_id,))
            if session_id is not None:
                db.execute("INSERT INTO station_sessions (station, session_id, operator_id, "
                           "started_at) VALUES (?, ?, ?, ?) ON CONFLICT (station) DO UPDATE SET "
                           "session_id = excluded.session_id, operator_id = excluded.operator_id, "
                           "started_at = excluded.started_at",
                           (station, session_id, operator_id, now()))
            self._operator_event(db, operator_id, "login", f"station {station}")

    def current_session_id(self, station: str) -> str | None:
        row = self._db.execute("SELECT session_id FROM station_sessions WHERE station = ?",
                               (station,)).fetchone()
        return str(row[0]) if row else None

    def end_station_session(self, station: str, operator_id: str | None) -> None:
        with self.transaction() as db:  # type: ignore[attr-defined]
            db.execute("DELETE FROM station_sessions WHERE station = ?", (station,))
            if operator_id is not None:
                self._operator_event(db, operator_id, "logout", f"station {station}")

    def unlock_operator(self, operator_id: str, actor: str | None) -> None:
        with self.transaction() as db:  # type: ignore[attr-defined]
            cursor = db.execute("UPDATE operators SET locked_at = NULL WHERE operator_id = ?",
                                (operator_id,))
            if cursor.rowcount != 1:
                raise self._error(f"no operator {operator_id}")
            db.execute("DELETE FROM login_failures WHERE operator_id = ?", (operator_id,))
            self._operator_event(db, operator_id, "unlocked", None, actor)

    def note_operator_event(self, operator_id: str, event: str, detail: str | None,
                            actor: str | None) -> None:
        with self.transaction() as db:  # type: ignore[attr-defined]
            self._operator_event(db, operator_id, event, detail, actor)

    def record_denial(self, station: str, operator_id: str | None, command: str,
                      scope: str | None, reason: str) -> None:
        with self.transaction() as db:  # type: ignore[attr-defined]
            db.execute("INSERT INTO access_denials (at, station, operator_id, command, scope, "
                       "reason) VALUES (?, ?, ?, ?, ?, ?)",
                       (now(), station, operator_id, command, scope, reason))
