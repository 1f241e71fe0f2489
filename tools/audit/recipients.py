"""Recipient agencies and their permitted purposes: data (fixtures/recipients.toml, or
``[audit] recipients_file``) loaded into the registry, then looked up on every release.

On a PostgreSQL registry with roles (migration 8) the table is the registry operator's:
only ``juki_admin`` (and the owner) may change it (`juki registry recipients --load`); a
station only reads it, and is told so instead of meeting a raw permission error."""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..errors import PermissionDeniedError, RequestError
from ..registry import Registry
from ..registry.backend import Backend
from ..registry.events import Event

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "fixtures" / "recipients.toml"


@dataclass(frozen=True)
class Purpose:
    code: str
    description: str


@dataclass(frozen=True)
class Recipient:
    recipient_id: str
    name: str
    purposes: tuple[Purpose, ...]

    def as_json(self) -> dict[str, object]:
        return {"id": self.recipient_id, "name": self.name,
                "purposes": [vars(p) for p in self.purposes]}


def parse_file(path: Path) -> list[Recipient]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RequestError("recipients", f"{path}: {exc}") from None
    return parse_bytes(data, path)


def parse_bytes(data: bytes, path: Path) -> list[Recipient]:
    """The recipients of a table file already read (``path`` names it in errors)."""
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RequestError("recipients", f"{path}: {exc}") from None
    found: list[Recipient] = []
    for number, item in enumerate(raw.get("recipient", []), start=1):
        try:
            purposes = tuple(Purpose(str(p["code"]), str(p["description"]))
                             for p in item["purposes"])
            recipient = Recipient(str(item["id"]), str(item["name"]), purposes)
        except (KeyError, TypeError):
            raise RequestError("recipients", f"{path}: recipient {number} needs id, name and "
                                             "purposes with code and description") from None
        if not recipient.purposes:
            raise RequestError("recipients", f"{path}: {recipient.recipient_id} has no purpose")
        found.append(recipient)
    if not found:
        raise RequestError("recipients", f"{path}: no [[recipient]] entries")
    return found


OPERATORS_TABLE = ("the recipient table of this registry is the registry operator's: "
                   "they load it with `juki registry recipients --load FILE`")


def may_change(db: Backend) -> bool:
    """Whether this connection may add to the table (on PostgreSQL: a granted INSERT)."""
    if db.dialect != "postgresql":
        return True
    row = db.execute("SELECT has_table_privilege('recipients', 'INSERT') AND "
                     "has_table_privilege('recipient_purposes', 'INSERT')").fetchone()
    return bool(row[0])


def add(db: Backend, recipients: list[Recipient]) -> list[str]:
    """Add what is new inside the caller's transaction (nothing is replaced: a
    recipient's purposes only grow by data); the ``recipient/purpose`` pairs added.
    Refused (PermissionDeniedError) to a connection that may not change the table."""
    if not may_change(db):
        raise PermissionDeniedError(f"{OPERATORS_TABLE}; this station may only read it")
    added = []
    for r in recipients:
        if db.execute("SELECT 1 FROM recipients WHERE recipient_id = ?",
                      (r.recipient_id,)).fetchone() is None:
            db.execute("INSERT INTO recipients (recipient_id, name) VALUES (?, ?)",
                       (r.recipient_id, r.name))
        for p in r.purposes:
            if db.execute("SELECT 1 FROM recipient_purposes WHERE recipient_id = ? AND "
                          "code = ?", (r.recipient_id, p.code)).fetchone() is None:
                db.execute("INSERT INTO recipient_purposes (recipient_id, code, description) "
                           "VALUES (?, ?, ?)", (r.recipient_id, p.code, p.description))
                added.append(f"{r.recipient_id}/{p.code}")
    return sorted(added)


def table_event(path: Path, data: bytes, added: list[str], reason: str) -> Event:
    """操作履歴 of a change to the table: the file, its SHA-256 and every pair added."""
    return Event("recipient-table-changed", reason,
                 detail={"file": path.name, "sha256": hashlib.sha256(data).hexdigest(),
                         "added": ", ".join(added) or "nothing"})


def load(registry: Registry, path: Path) -> list[Recipient]:
    """The table file's new recipients and purposes added, with their event (a station's
    registry records it in the same transaction)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RequestError("recipients", f"{path}: {exc}") from None
    recipients = parse_bytes(data, path)
    with registry.transaction() as db:
        added = add(db, recipients)
        if added:
            registry._log_event(db, table_event(path, data, added, "the configured table"))
    return recipients


def listed(registry: Registry) -> list[Recipient]:
    db = registry.connection()
    names = dict(db.execute("SELECT recipient_id, name FROM recipients ORDER BY recipient_id"))
    purposes: dict[str, list[Purpose]] = {rid: [] for rid in names}
    for rid, code, description in db.execute(
            "SELECT recipient_id, code, description FROM recipient_purposes ORDER BY code"):
        purposes[rid].append(Purpose(code, description))
    return [Recipient(rid, name, tuple(purposes[rid])) for rid, name in names.items()]


def ensure_loaded(registry: Registry, path: Path | None) -> None:
    """The configured table, loaded the first time a station needs it; a station that
    may not change the table (PostgreSQL with roles) only reads it, and an empty one is
    an error naming who fills it (every release would be refused)."""
    db = registry.connection()
    if db.execute("SELECT 1 FROM recipients LIMIT 1").fetchone() is None:
        if not may_change(db):
            raise RequestError("recipients", f"the registry's recipient table is empty; "
                                             f"{OPERATORS_TABLE}")
        load(registry, path or DEFAULT_FILE)


def purpose_of(registry: Registry, recipient_id: str, code: str) -> tuple[str, str] | None:
    """(recipient name, purpose description) if ``code`` is permitted to the recipient."""
    row = registry.connection().execute(
        "SELECT r.name, p.description FROM recipients r JOIN recipient_purposes p ON "
        "p.recipient_id = r.recipient_id WHERE r.recipient_id = ? AND p.code = ?",
        (recipient_id, code)).fetchone()
    return (str(row[0]), str(row[1])) if row else None
