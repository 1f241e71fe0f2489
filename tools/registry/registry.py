"""The registry: cards and their life cycle, residents and their record codes.

SQLite in the station home by default, PostgreSQL by ``postgresql://`` URL (see
``backend``). Every change is one transaction, so a state the
cards could never be in (``active`` without a finished card, two live rows for one
card, two active codes for one resident) is never written.

Card life cycle: issuing → active | failed; active ⇄ suspended; active/suspended →
revoked (with a reason) or expired. A ``failed`` card can be issued again or wiped.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from cardlib.checkdigits import resident_code_check_digit

from . import checked, pg_roles
from .backend import Backend, open_backend
from .certificates import CertificateStore, IssuedLike
from .events import Event, EventSink
from .moves import MoveStore
from .operations import OperationStore
from .operators import OperatorStore
from .records import CARD_COLUMNS, CardEvent, CardRecord, RegistryError, now
from .roles import OWNER_ROLE
from .schema import MIGRATIONS, REVOKE_REASONS, statements_for

if TYPE_CHECKING:
    from .tls import ClientIdentity

LIVE = ("issuing", "active", "suspended")
LIVE_SQL = "(" + ", ".join(f"'{status}'" for status in LIVE) + ")"  # LIVE in an IN clause
TRANSITIONS = {
    "suspended": {"active"},
    "active": {"suspended"},
    "revoked": {"active", "suspended"},
    "expired": {"active", "suspended"},
}


def new_record_code() -> str:
    body = "".join(secrets.choice("0123456789") for _ in range(10))
    return body + str(resident_code_check_digit(body))


class Registry(CertificateStore, MoveStore, OperationStore, OperatorStore):
    def __init__(self, target: Path | str, client: ClientIdentity | None = None) -> None:
        """``target``: a SQLite file path, or a ``postgresql://`` URL; ``client``: a
        station's TLS identity for a shared PostgreSQL registry (``tls``)."""
        self._db: Backend = open_backend(target, client)
        # 操作履歴: the station sets this (tools.audit.events.EventRecorder); every change
        # then commits with its event in the tamper-evident log, or not at all.
        self.event_sink: EventSink | None = None
        self.location = self._db.location
        self.migrate()

    @property
    def dialect(self) -> str:
        return self._db.dialect

    def close(self) -> None:
        self._db.close()

    def connection(self) -> Backend:
        """The connection, for reads outside a write transaction (audit queries)."""
        return self._db

    @contextmanager
    def transaction(self) -> Iterator[Backend]:
        self._db.begin_write()
        try:
            yield self._db
            if self.event_sink is not None:
                self.event_sink.before_commit(self._db)
        except BaseException:
            self._db.rollback()
            if self.event_sink is not None:
                self.event_sink.discard()
            raise
        self._db.commit()

    def _log_event(self, db: Backend, event: Event) -> None:
        """Append ``event`` to the log inside the transaction of the change (no-op for a
        registry without an event sink)."""
        if self.event_sink is not None:
            self.event_sink.append(db, event)

    def log_event(self, event: Event) -> None:
        """An event of a change outside the registry's tables (a key created in the
        token, a PIN reset on a card), in a transaction of its own."""
        with self.transaction() as db:
            self._log_event(db, event)

    def schema_version(self) -> int:
        return self._db.version()

    def migrate(self) -> int:
        """Apply every pending migration (each with its version bump, atomically). On a
        PostgreSQL registry with roles only its owner (or a superuser) migrates: a
        station facing an older schema is told to have `juki db upgrade` run."""
        with self.transaction() as db:
            if db.version() < len(MIGRATIONS) and not pg_roles.is_owner(db) \
                    and pg_roles.roles_configured(db):
                who = db.execute("SELECT current_user").fetchone()[0]
                raise RegistryError(
                    f"the registry's schema is version {db.version()}, this juki needs "
                    f"{len(MIGRATIONS)}: the registry operator runs `juki db upgrade` "
                    f"connected as {OWNER_ROLE} (--db/JUKI_DB: the owner's URL); this "
                    f"connection is {who}, which may not migrate")
            for index in range(db.version(), len(MIGRATIONS)):
                for statement in statements_for(db.dialect, index):
                    db.execute(statement)
                db.set_version(index + 1)
        return len(MIGRATIONS)

    # ---- reading ----------------------------------------------------------------------

    def get(self, serial: str) -> CardRecord | None:
        """The card's latest row (a wiped and re-issued card has older ones)."""
        row = self._db.execute(f"SELECT {CARD_COLUMNS} FROM cards WHERE serial = ? "
                               "ORDER BY id DESC LIMIT 1", (serial,)).fetchone()
        return CardRecord(*row) if row else None

    def list(self, status: str | None = None) -> list[CardRecord]:
        query = f"SELECT {CARD_COLUMNS} FROM cards"
        args: tuple[str, ...] = ()
        if status:
            query, args = query + " WHERE status = ?", (status,)
        return [CardRecord(*row) for row in self._db.execute(query + " ORDER BY id", args)]

    def events(self, serial: str) -> list[CardEvent]:
        rows = self._db.execute("SELECT serial, at, from_status, to_status, reason FROM card_events"
                                " WHERE serial = ? ORDER BY id", (serial,))
        return [CardEvent(*row) for row in rows]

    def resident_of_code(self, code: str) -> tuple[int, str] | None:
        """(resident id, the code's status) for any code ever assigned."""
        row = self._db.execute("SELECT resident_id, status FROM record_codes WHERE code = ?",
                               (code,)).fetchone()
        return (int(row[0]), str(row[1])) if row else None

    def active_code(self, resident_id: int) -> str | None:
        row = self._db.execute("SELECT code FROM record_codes WHERE resident_id = ? AND "
                               "status = 'active'", (resident_id,)).fetchone()
        return str(row[0]) if row else None

    def code_history(self, resident_id: int) -> list[dict[str, str | None]]:
        rows = self._db.execute("SELECT code, status, assigned_at, retired_at, reason FROM "
                                "record_codes WHERE resident_id = ? ORDER BY assigned_at, code",
                                (resident_id,))
        return [dict(zip(("code", "status", "assigned_at", "retired_at", "reason"), row,
                         strict=True)) for row in rows]

    # ---- card life cycle --------------------------------------------------------------

    def _event(self, db: Backend, serial: str, before: str | None, after: str,
               reason: str | None) -> None:
        db.execute("INSERT INTO card_events (serial, at, from_status, to_status, reason) "
                   "VALUES (?, ?, ?, ?, ?)", (serial, now(), before, after, reason))
        row = db.execute("SELECT resident_id FROM cards WHERE serial = ? ORDER BY id DESC LIMIT 1",
                         (serial,)).fetchone()
        self._log_event(db, Event(f"card-{after}", reason, card_serial=serial,
                                  resident_id=int(row[0]) if row and row[0] is not None else None,
                                  detail={"from": before}))

    def _resident_for_issue(self, db: Backend, code: str, reissue_of: str | None) -> int:
        row = db.execute("SELECT resident_id, status FROM record_codes WHERE code = ?",
                         (code,)).fetchone()
        if row is None:
            if reissue_of is not None:
                raise RegistryError(f"record code {code} is not the code of card {reissue_of}'s "
                                    "resident")
            resident = int(db.execute("INSERT INTO residents (created_at) VALUES (?) RETURNING id",
                                      (now(),)).fetchone()[0])
            db.execute("INSERT INTO record_codes (code, resident_id, status, assigned_at) "
                       "VALUES (?, ?, 'active', ?)", (code, resident, now()))
            return resident
        resident, status = int(row[0]), str(row[1])
        if status != "active":
            raise RegistryError(f"record code {code} is {status}: it can never be used again")
        live = db.execute(f"SELECT serial FROM cards WHERE resident_id = ? AND status IN {LIVE_SQL}",
                          (resident,)).fetchall()
        others = [s for (s,) in live if s != reissue_of]
        if others:
            raise RegistryError(f"the resident with code {code} already holds card {others[0]}: "
                                "use `juki card reissue`")
        if reissue_of is not None and not live:
            raise RegistryError(f"card {reissue_of} is not a live card of this resident")
        return resident

    def check_can_issue(self, resident_code: str, reissue_of: str | None = None) -> None:
        """The registry rules of ``begin_issuance`` that do not need the card: checked
        before any card I/O (the transaction in ``begin_issuance`` checks them again)."""
        self._db.begin_write()  # it may write (then roll back): take the write lock
        try:
            self._resident_for_issue(self._db, resident_code, reissue_of)
        finally:
            self._db.rollback()  # nothing of the check is kept

    def begin_issuance(self, serial: str, profile: str, resident_code: str,
                       municipality_code: str, expiry: dt.date,
                       reissue_of: str | None = None, owner: str | None = None) -> None:
        """Record the card as ``issuing`` for the resident holding ``resident_code`` (a new
        resident if the code is new). A ``failed`` attempt on the same card is superseded."""
        with self.transaction() as db:
            live = db.execute(f"SELECT status FROM cards WHERE serial = ? AND status IN {LIVE_SQL}",
                              (serial,)).fetchone()
            if live:
                raise RegistryError(f"card {serial} is already registered ({live[0]})")
            resident = self._resident_for_issue(db, resident_code, reissue_of)
            stamp = now()
            db.execute(
                "INSERT INTO cards (serial, profile, status, resident_id, resident_code, "
                "municipality_code, expiry, created_at, updated_at, owner) "
                "VALUES (?, ?, 'issuing', ?, ?, ?, ?, ?, ?, ?)",
                (serial, profile, resident, resident_code, municipality_code, expiry.isoformat(),
                 stamp, stamp, owner))
            self._event(db, serial, None, "issuing", f"reissue of {reissue_of}" if reissue_of
                        else None)

    def complete_issuance(self, serial: str, certificate_der: bytes,
                          supersedes: str | None = None,
                          identity: dict[str, str | None] | None = None,
                          certificates: tuple[IssuedLike, ...] | list[IssuedLike] = ()) -> None:
        """``issuing`` → ``active``; a superseded card is revoked in the same transaction;
        the resident's identity information (the 4 information) is kept for disclosure;
        the certificates issued onto the card are recorded (for the CRLs)."""
        with self.transaction() as db:
            if db.dialect == "postgresql":
                changed = checked.card_status(db, serial, "issuing", "active",
                                              certificate=certificate_der)
            else:
                changed = db.execute("UPDATE cards SET status = 'active', certificate = ?, "
                                     "updated_at = ? WHERE serial = ? AND status = 'issuing'",
                                     (certificate_der, now(), serial)).rowcount
            if changed != 1:
                raise RegistryError(f"card {serial} is not being issued")
            self._event(db, serial, "issuing", "active", None)
            for issued in certificates:
                self.record_certificate(db, issued, card_serial=serial)
            if identity is not None:
                row = db.execute(f"SELECT resident_id FROM cards WHERE serial = ? AND status IN "
                                 f"{LIVE_SQL}", (serial,)).fetchone()
                self._store_identity(db, int(row[0]), identity)
            if supersedes is not None:
                self._transition(db, supersedes, "revoked", "superseded")

    def _store_identity(self, db: Backend, resident_id: int,
                        identity: dict[str, str | None]) -> None:
        db.execute("DELETE FROM resident_identity WHERE resident_id = ?", (resident_id,))
        db.execute("INSERT INTO resident_identity (resident_id, name, name_kana, birth_date, sex, "
                   "address, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (resident_id, identity["name"], identity.get("name_kana"),
                    identity["birth_date"], identity["sex"], identity["address"], now()))

    def identity_of(self, resident_id: int) -> dict[str, str | None] | None:
        row = self._db.execute("SELECT name, name_kana, birth_date, sex, address, updated_at "
                               "FROM resident_identity WHERE resident_id = ?",
                               (resident_id,)).fetchone()
        keys = ("name", "name_kana", "birth_date", "sex", "address", "updated_at")
        return dict(zip(keys, row, strict=True)) if row else None

    def mark_failed(self, serial: str, reason: str) -> None:
        with self.transaction() as db:
            if db.dialect == "postgresql":
                changed = checked.card_status(db, serial, "issuing", "failed",
                                              failure=reason[:500])
            else:
                changed = db.execute("UPDATE cards SET status = 'failed', failure = ?, "
                                     "updated_at = ? WHERE serial = ? AND status = 'issuing'",
                                     (reason[:500], now(), serial)).rowcount
            if changed:
                self._event(db, serial, "issuing", "failed", reason[:200])

    def unfinished(self) -> list[CardRecord]:
        """Issuances that never finished (a process died mid-way): still ``issuing``."""
        return self.list("issuing")

    def _transition(self, db: Backend, serial: str, to: str, reason: str | None) -> str:
        row = db.execute("SELECT id, status FROM cards WHERE serial = ? ORDER BY id DESC LIMIT 1",
                         (serial,)).fetchone()
        if row is None:
            raise RegistryError(f"card {serial} is not in the registry")
        card_id, before = int(row[0]), str(row[1])
        if before not in TRANSITIONS.get(to, set()):
            raise RegistryError(f"card {serial} is {before}: it cannot become {to}")
        if db.dialect == "postgresql":
            checked.card_status(db, serial, before, to, reason)
        else:
            db.execute("UPDATE cards SET status = ?, status_reason = ?, updated_at = ? "
                       "WHERE id = ?", (to, reason, now(), card_id))
        self._event(db, serial, before, to, reason)
        if to == "revoked":  # the card's certificates follow its status (the CRLs)
            self.revoke_certificates(db, reason=str(reason), card_serial=serial)
        elif to == "suspended":
            self.hold_certificates(db, serial)
        elif to == "active" and before == "suspended":
            self.release_certificates(db, serial)
        return before

    def set_status(self, serial: str, to: str, reason: str | None = None) -> str:
        """Suspend, resume (→ active), revoke (reason required) or expire; returns the old status."""
        if to == "revoked" and reason not in REVOKE_REASONS:
            raise RegistryError(f"revocation reason must be one of {', '.join(REVOKE_REASONS)}")
        with self.transaction() as db:
            return self._transition(db, serial, to, reason)

    def expire_due(self, today: dt.date | None = None) -> list[str]:
        """Mark live cards past their expiry ``expired``; returns their serials."""
        day = (today or dt.datetime.now(dt.UTC).date()).isoformat()
        with self.transaction() as db:
            due = [s for (s,) in db.execute("SELECT serial FROM cards WHERE status IN "
                                            "('active', 'suspended') AND expiry < ?", (day,))]
            for serial in due:
                self._transition(db, serial, "expired", "past expiry")
        return due

    def forget_failed(self, serial: str) -> None:
        """After a wipe: the failed attempt stays in history; the card is blank again."""
        with self.transaction() as db:
            row = db.execute("SELECT status FROM cards WHERE serial = ? ORDER BY id DESC LIMIT 1",
                             (serial,)).fetchone()
            if row and row[0] in LIVE:
                raise RegistryError(f"card {serial} is {row[0]}: revoke it before wiping")
            self._event(db, serial, row[0] if row else None, "wiped", None)

    # ---- record codes -----------------------------------------------------------------

    def reserve_new_code(self, current: str) -> tuple[int, str]:
        """A fresh random code (valid check digit, never used by anyone) reserved
        ``pending`` for the resident holding ``current``."""
        with self.transaction() as db:
            row = db.execute("SELECT resident_id, status FROM record_codes WHERE code = ?",
                             (current,)).fetchone()
            if row is None or row[1] != "active":
                raise RegistryError(f"record code {current} is not an active code")
            resident = int(row[0])
            while True:
                code = new_record_code()
                if db.execute("SELECT 1 FROM record_codes WHERE code = ?", (code,)).fetchone() is None:
                    break
            db.execute("INSERT INTO record_codes (code, resident_id, status, assigned_at) "
                       "VALUES (?, ?, 'pending', ?)", (code, resident, now()))
            return resident, code

    def commit_code_change(self, resident: int, old: str, new: str, reason: str) -> None:
        with self.transaction() as db:
            if db.dialect == "postgresql":
                checked.code_status(db, old, resident, "active", "retired", reason)
                changed = checked.code_status(db, new, resident, "pending", "active")
            else:
                db.execute("UPDATE record_codes SET status = 'retired', retired_at = ?, "
                           "reason = ? WHERE code = ? AND resident_id = ? AND status = 'active'",
                           (now(), reason, old, resident))
                changed = db.execute("UPDATE record_codes SET status = 'active' WHERE code = ? "
                                     "AND resident_id = ? AND status = 'pending'",
                                     (new, resident)).rowcount
            if changed != 1:
                raise RegistryError(f"code {new} was not reserved for this resident")
            # the codes themselves are not in the event: a reader of 操作履歴 without
            # read-code learns that it changed, when and why, not what it is
            self._log_event(db, Event("record-code-changed", reason, resident_id=resident))

    def abandon_code(self, code: str) -> None:
        """A reserved code whose card write failed: never handed out, never reused."""
        with self.transaction() as db:
            if db.dialect == "postgresql":
                checked.code_status(db, code, None, "pending", "abandoned")
            else:
                db.execute("UPDATE record_codes SET status = 'abandoned', retired_at = ? "
                           "WHERE code = ? AND status = 'pending'", (now(), code))
