"""Status changes of cards and record codes on PostgreSQL: through migration 8's
SECURITY DEFINER functions (a station has no UPDATE on those status columns), which
allow only the registry's transitions. The callers check the rules first and keep
their own SQL on SQLite; both paths change the same columns the same way."""

from __future__ import annotations

from .backend import Backend
from .records import now


def card_status(db: Backend, serial: str, before: str, to: str, reason: str | None = None,
                certificate: bytes | None = None, failure: str | None = None) -> int:
    """The card's latest row ``before`` → ``to``: status, ``updated_at``, and
    ``status_reason`` (not when leaving ``issuing``), the certificate (issuing → active),
    the failure (→ failed). Rows changed (0: the card was not ``before``)."""
    row = db.execute("SELECT juki_card_status(?, ?, ?, ?, ?, ?, ?)",
                     (serial, before, to, reason, certificate, failure, now())).fetchone()
    return int(row[0])


def code_status(db: Backend, code: str, resident: int | None, before: str, to: str,
                reason: str | None = None) -> int:
    """The record code ``before`` → ``to`` (of ``resident``, unless None): ``retired_at``
    when it leaves use, ``reason`` when retired. Rows changed (0: it was not ``before``)."""
    row = db.execute("SELECT juki_record_code_status(?, ?, ?, ?, ?, ?)",
                     (code, resident, before, to, reason, now())).fetchone()
    return int(row[0])
