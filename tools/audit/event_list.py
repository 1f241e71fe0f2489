"""操作履歴 read back: the log's ``event`` entries, oldest first, filtered by who acted, the
card, the time, the event name; each with its inclusion proof on request (`juki audit
events`). And 付随情報: a resident's events about their 4 information and record code
(`juki audit self`, the disclosure report).

The log can be large: entries are read in index-ordered batches of the ``kind`` index
(``provision_log_kind``), pre-filtered in SQL on the canonical JSON, and matched exactly
on the parsed entry; nothing holds more than one batch.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any
from zoneinfo import ZoneInfo

from ..errors import RequestError
from ..registry.backend import Backend
from . import log, merkle
from .events import EVENT_KIND

BATCH = 500


def parse_since(text: str, zone: str) -> dt.datetime:
    """``--since``: an ISO date (midnight) or date-time; without an offset it is the
    station's local time. A bad value is a ``RequestError`` naming it."""
    try:
        if len(text) == 10:
            moment = dt.datetime.combine(dt.date.fromisoformat(text), dt.time())
        else:
            moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise RequestError("since", f"--since {text!r} is not an ISO date (YYYY-MM-DD) or "
                                    "date-time (YYYY-MM-DDTHH:MM[:SS][+09:00])") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(zone))


@dataclass(frozen=True)
class EventQuery:
    """Which events: the acting operator, the card, from when on, the event name (each
    optional)."""

    operator: str | None = None
    card_serial: str | None = None
    since: dt.datetime | None = None
    event: str | None = None

    def _exact(self) -> dict[str, str]:
        wanted = {"operator": self.operator, "card_serial": self.card_serial,
                  "event": self.event}
        return {k: v for k, v in wanted.items() if v is not None}

    def matches(self, fields: dict[str, Any]) -> bool:
        if fields.get("kind") != EVENT_KIND:
            return False
        if any(fields.get(k) != v for k, v in self._exact().items()):
            return False
        if self.since is not None:
            return dt.datetime.fromisoformat(str(fields["time_utc"])) >= self.since
        return True

    def sql(self) -> tuple[str, tuple[str, ...]]:
        """A LIKE pre-filter per exact field (canonical JSON writes ``"key":value,``; the
        leading quote keeps ``operator`` from matching ``subject_operator``)."""
        clauses, params = [], []
        for key, value in self._exact().items():
            encoded = json.dumps(value, ensure_ascii=False)
            escaped = encoded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            clauses.append("entry LIKE ? ESCAPE '\\'")
            params.append(f'%"{key}":{escaped},%')
        return "".join(f" AND {c}" for c in clauses), tuple(params)


def event_entries(db: Backend, query: EventQuery, below: int | None = None) -> Iterator[log.Entry]:
    """The matching event entries with index < ``below`` (all if None), oldest first,
    one batch in memory at a time."""
    extra, params = query.sql()
    after = -1
    while True:
        limit = "" if below is None else " AND idx < ?"
        rows = db.execute(
            f"SELECT idx, entry FROM provision_log WHERE kind = ? AND idx > ?{limit}{extra} "
            "ORDER BY idx LIMIT ?",
            (EVENT_KIND, after, *(() if below is None else (below,)), *params, BATCH)).fetchall()
        for index, raw in rows:
            entry = log.Entry(int(index), str(raw))
            if query.matches(entry.fields):
                yield entry
        if len(rows) < BATCH:
            return
        after = int(rows[-1][0])


@dataclass(frozen=True)
class ListedEvent:
    index: int
    time_local: str
    time_utc: str
    station: str
    operator: str | None
    scope: str | None
    event: str
    reason: str | None
    card_serial: str | None
    subject_operator: str | None
    detail: dict[str, Any]
    inclusion_proof: list[str] | None = None  # hex, against the listing's checkpoint
    proof_verified: bool | None = None

    def as_json(self) -> dict[str, object]:
        return asdict(self)

    def text(self) -> str:
        parts = [f"#{self.index} {self.time_local} {self.station}",
                 f"operator {self.operator or '-'}", f"scope {self.scope or '-'}", self.event]
        parts += [f"{label} {value}" for label, value in (
            ("reason", self.reason), ("card", self.card_serial),
            ("subject", self.subject_operator)) if value is not None]
        if self.detail:
            parts.append(" ".join(f"{k}={v}" for k, v in sorted(self.detail.items())))
        line = "  ".join(parts)
        if self.inclusion_proof is not None:
            line += (f"\n    inclusion proof {'verified' if self.proof_verified else 'FAILED'}: "
                     + (" ".join(self.inclusion_proof) or "(the tree's only leaf)"))
        return line


def listed(entry: log.Entry, size: int | None = None, root: bytes | None = None,
           subtree: merkle.Subtree | None = None) -> ListedEvent:
    """One entry as listed; with ``size``, ``root`` and ``subtree``, with its inclusion
    proof in the tree of ``size`` leaves, verified against ``root``."""
    f = entry.fields
    proof, ok = None, None
    if size is not None and root is not None and subtree is not None:
        hashes = merkle.inclusion_proof(entry.index, size, subtree)
        ok = merkle.verify_inclusion(entry.index, size, entry.leaf, hashes, root)
        proof = [h.hex() for h in hashes]
    return ListedEvent(entry.index, str(f["time_local"]), str(f["time_utc"]), str(f["station"]),
                       f.get("operator"), f.get("scope"), str(f["event"]), f.get("reason"),
                       f.get("card_serial"), f.get("subject_operator"), dict(f.get("detail") or {}),
                       proof, ok)


# ---- 付随情報 --------------------------------------------------------------------------

# the events about a resident's 4 information and record code (a reissued card's
# activation comes from its card-issuing event's "reissue of …" reason)
INCIDENTAL_EVENTS = frozenset({"four-info-changed", "move-out", "move-in", "card-continued",
                               "move-lapsed", "move-cancelled", "move-expired",
                               "record-code-changed"})
# never shown even if an event's detail held one: the values themselves are identity
# information (or a record code), disclosed by their own fields, not as history
VALUE_KEYS = frozenset({"name", "name_kana", "address", "birth_date", "sex", "value",
                        "old_value", "new_value", "code", "old_code", "new_code",
                        "record_code", "individual_number"})


@dataclass(frozen=True)
class IncidentalEntry:
    index: int
    date: str  # the local date it was recorded
    time_local: str
    event: str
    reason: str | None
    detail: dict[str, Any]
    inclusion_proof: list[str]
    proof_verified: bool


def incidental_information(entries: list[log.Entry], size: int, root: bytes,
                           subtree: merkle.Subtree) -> list[IncidentalEntry]:
    """付随情報 from a resident's log entries (``log.entries_of_resident``), each proven
    included in the tree of ``size`` leaves whose root is ``root``."""
    reissues: dict[str, str] = {}
    found = []
    for entry in entries:
        f = entry.fields
        if f.get("kind") != EVENT_KIND or entry.index >= size:
            continue
        name, reason, serial = str(f["event"]), f.get("reason"), f.get("card_serial")
        if name == "card-issuing" and str(reason or "").startswith("reissue of "):
            reissues[str(serial)] = str(reason)
            continue
        if name == "card-active" and serial in reissues:
            reason = reissues.pop(str(serial))
        elif name not in INCIDENTAL_EVENTS:
            continue
        hashes = merkle.inclusion_proof(entry.index, size, subtree)
        found.append(IncidentalEntry(
            entry.index, str(f["time_local"])[:10], str(f["time_local"]), name, reason,
            {k: v for k, v in (f.get("detail") or {}).items() if k not in VALUE_KEYS},
            [h.hex() for h in hashes],
            merkle.verify_inclusion(entry.index, size, entry.leaf, hashes, root)))
    return found
