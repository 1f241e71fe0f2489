"""Answering a chunk of `juki provide batch` rows from the registry: a few queries per
chunk (``IN (...)`` over the chunk's codes or residents, or over its 4 information as
row values), never one per row.

- ``match``: the resident's current 本人確認情報 (4 information and record code).
- ``changed-since``: the requested record code was retired (the current one is given,
  and the day it was retired), or the resident's information was updated after the
  row's ``known_as_of`` (that day); the current 本人確認情報 is given too.
- ``no-match``: no resident (an unknown, abandoned or never-issued code; no resident
  or more than one with exactly those 4 information): nothing about anyone is given.
Dates (付随情報) are the station's local days.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from ..registry.backend import Backend
from .batch_request import RequestRow

MATCH, NO_MATCH, CHANGED = "match", "no-match", "changed-since"
IDENTITY = ("name", "birth_date", "sex", "address")


@dataclass(frozen=True)
class Answer:
    row: RequestRow
    status: str
    resident_id: int | None = None
    record_code: str | None = None  # the current code
    identity: tuple[str, str, str, str] | None = None  # name, birth_date, sex, address
    changed_on: str | None = None  # YYYY-MM-DD, local

    @property
    def fields(self) -> tuple[str, ...]:
        """What this answer releases about a resident (nothing for no-match)."""
        if self.status == NO_MATCH:
            return ()
        released = (*(IDENTITY if self.identity else ()),
                    *(("record_code",) if self.record_code else ()))
        return (*released, "changed_on") if self.status == CHANGED else released


def _marks(values: Iterable[Any]) -> str:
    return ", ".join("?" for _ in values)


def _select(db: Backend, sql: str, values: list[Any]) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in db.execute(sql.format(_marks(values)), tuple(values))] \
        if values else []


def _local_day(stamp: str | None, zone: ZoneInfo) -> str | None:
    if not stamp:
        return None
    return dt.datetime.fromisoformat(stamp).astimezone(zone).date().isoformat()


class Lookup:
    """The registry's answers for one chunk (see the module docstring)."""

    def __init__(self, db: Backend, zone: str) -> None:
        self.db, self.zone = db, ZoneInfo(zone)

    def _residents(self, ids: set[int]) -> tuple[dict[int, tuple], dict[int, str]]:
        wanted = sorted(ids)
        identities = {int(r[0]): r[1:] for r in _select(
            self.db, "SELECT resident_id, name, birth_date, sex, address, updated_at "
                     "FROM resident_identity WHERE resident_id IN ({})", wanted)}
        codes = {int(r[0]): str(r[1]) for r in _select(
            self.db, "SELECT resident_id, code FROM record_codes WHERE status = 'active' "
                     "AND resident_id IN ({})", wanted)}
        return identities, codes

    def _answer(self, row: RequestRow, resident: int, identities: dict[int, tuple],
                codes: dict[int, str], retired_at: str | None = None) -> Answer:
        found = identities.get(resident)
        identity = tuple(str(v) for v in found[:4]) if found else None
        code = codes.get(resident)
        if retired_at is not None:
            return Answer(row, CHANGED, resident, code, identity,  # type: ignore[arg-type]
                          _local_day(retired_at, self.zone))
        updated = _local_day(found[4], self.zone) if found else None
        if row.known_as_of and updated and updated > row.known_as_of.isoformat():
            return Answer(row, CHANGED, resident, code, identity, updated)  # type: ignore[arg-type]
        return Answer(row, MATCH, resident, code, identity)  # type: ignore[arg-type]

    def by_code(self, rows: list[RequestRow]) -> list[Answer]:
        codes = sorted({str(r.record_code) for r in rows})
        known = {str(r[0]): (int(r[1]), str(r[2]), r[3]) for r in _select(
            self.db, "SELECT code, resident_id, status, retired_at FROM record_codes "
                     "WHERE code IN ({})", codes)}
        usable = {c: v for c, v in known.items() if v[1] in ("active", "retired")}
        identities, current = self._residents({v[0] for v in usable.values()})
        answers = []
        for row in rows:
            hit = usable.get(str(row.record_code))
            if hit is None:
                answers.append(Answer(row, NO_MATCH))
                continue
            resident, status, retired_at = hit
            answers.append(self._answer(row, resident, identities, current,
                                        str(retired_at or "") if status == "retired" else None))
        return answers

    def by_four(self, rows: list[RequestRow]) -> list[Answer]:
        wanted = sorted({r.four for r in rows if r.four})
        people: dict[tuple[str, ...], list[int]] = {}
        if wanted:  # only exact matches come back, each found through the
            # (birth_date, name) index: a join on a VALUES list (a row-value IN scans)
            rows_sql = ", ".join("(?, ?, ?, ?)" for _ in wanted)
            for resident, *four in self.db.execute(
                    f"WITH wanted (name, birth_date, sex, address) AS (VALUES {rows_sql}) "
                    "SELECT r.resident_id, r.name, r.birth_date, r.sex, r.address "
                    "FROM wanted JOIN resident_identity r ON r.birth_date = wanted.birth_date "
                    "AND r.name = wanted.name AND r.sex = wanted.sex "
                    "AND r.address = wanted.address",
                    tuple(v for person in wanted for v in person)):
                people.setdefault(tuple(str(v) for v in four), []).append(int(resident))
        identities, current = self._residents(
            {ids[0] for r in rows if len(ids := people.get(tuple(r.four or ()), [])) == 1})
        answers = []
        for row in rows:
            found = people.get(tuple(row.four or ()), [])
            answers.append(self._answer(row, found[0], identities, current)
                           if len(found) == 1 else Answer(row, NO_MATCH))
        return answers

    def answer(self, rows: list[RequestRow]) -> list[Answer]:
        codes = [r for r in rows if r.record_code is not None]
        return self.by_code(codes) if codes else self.by_four(rows)
