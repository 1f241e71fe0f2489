"""Recipient agencies and their permitted purposes: data (fixtures/recipients.toml, or
``[audit] recipients_file``) loaded into the registry, then looked up on every release."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..errors import RequestError
from ..registry import Registry

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
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
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


def load(registry: Registry, path: Path) -> list[Recipient]:
    """Replace nothing, add what is new (a recipient's purposes only grow by data)."""
    recipients = parse_file(path)
    with registry.transaction() as db:
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
    """The configured table, loaded the first time a station needs it."""
    if registry.connection().execute("SELECT 1 FROM recipients LIMIT 1").fetchone() is None:
        load(registry, path or DEFAULT_FILE)


def purpose_of(registry: Registry, recipient_id: str, code: str) -> tuple[str, str] | None:
    """(recipient name, purpose description) if ``code`` is permitted to the recipient."""
    row = registry.connection().execute(
        "SELECT r.name, p.description FROM recipients r JOIN recipient_purposes p ON "
        "p.recipient_id = r.recipient_id WHERE r.recipient_id = ? AND p.code = ?",
        (recipient_id, code)).fetchone()
    return (str(row[0]), str(row[1])) if row else None
