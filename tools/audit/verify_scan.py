"""One range of the provision log checked without the token (`juki audit verify`'s share
of the work that two worker processes do at once).

For the entries ``[start, end)`` of a task: the index sequence, canonical JSON, the
``resident_id``/``kind`` columns against the entry, the leaf hashes and the range's
perfect subtrees (a task starts at a multiple of ``CHUNK``, so its subtrees combine with
the ones before it into the roots the parent checks). The parent keeps the token: a
worker never opens it. It gets back what needs the token (MACs of the tail, the leaves
under its batches) and the first problem of its range.

Run as ``python -m tools.audit.verify_scan``: reads ``(location, client, [Task, ...])`` pickled
on stdin (the database location, which may hold a password, never on argv) and writes
one pickled ``ChunkResult`` per task, in order, on stdout.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHUNK = 1 << 15  # entries per task; a power of two, so task boundaries align subtrees
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_PARSE = json.JSONDecoder().raw_decode  # no whitespace skipping: a canonical entry has none
_ROWS = ("SELECT idx, entry, mac, mac_version, kind, resident_id FROM provision_log "
         "WHERE idx >= ? AND idx < ? ORDER BY idx")
# PostgreSQL through pure-python psycopg converts each value in Python: two text columns
# cost less than half of six. ``kind`` goes last: split at most 4 times, it may hold spaces.
_PG_ROWS = ("SELECT entry, concat(idx, ' ', coalesce(resident_id::text, 'N'), ' ', "
            "mac_version, ' ', encode(mac, 'hex'), ' ', kind) FROM provision_log "
            "WHERE idx >= ? AND idx < ? ORDER BY idx")


@dataclass(frozen=True)
class Task:
    start: int
    end: int
    cuts: tuple[int, ...]  # sizes in (start, end] whose root the parent checks
    tail: int  # from here on: MACs go to the token, empty-MAC runs go to the parent
    leaves_from: int  # from here on: leaf hashes go to the parent (its batches' MTH)


@dataclass
class ChunkResult:
    start: int
    reached: int = 0  # entries [start, reached) were checked
    stack: list[tuple[int, bytes]] = field(default_factory=list)  # their compact range
    cuts: dict[int, list[tuple[int, bytes]]] = field(default_factory=dict)
    macs: list[tuple[int, bytes, bytes, int]] = field(default_factory=list)  # tail only
    empty: list[tuple[int, int]] = field(default_factory=list)  # empty-MAC runs, tail only
    uncovered: int | None = None  # first empty-MAC entry before the tail in no batch row
    leaves: bytes = b""
    problem: tuple[int, str] | None = None
    pid: int = 0  # the worker process that checked it (0: the parent itself)


def entry_problem(index: int, raw: str, kind: object, resident_id: object) -> str | None:
    """What is wrong with one stored entry on its own, or None."""
    try:
        fields, end = _PARSE(raw)
        if end != len(raw):  # json.loads decides: white space, or not JSON at all
            raise ValueError
    except ValueError:
        try:
            fields = json.loads(raw)
        except ValueError:
            return "not JSON"
    if not isinstance(fields, dict) or fields.get("index") != index:
        return f"names index {fields.get('index') if isinstance(fields, dict) else '?'}"
    if _CANONICAL.encode(fields) != raw:
        return "not in canonical form"
    if fields.get("resident_id") != resident_id:
        return (f"the resident_id column says {resident_id}, the signed entry says "
                f"{fields.get('resident_id')} (re-attributed)")
    if fields.get("kind") != kind:
        return f"the kind column says {kind!r}, the signed entry says {fields.get('kind')!r}"
    return None


def rows(db: Any, start: int, end: int) -> Iterator[tuple[Any, ...]]:
    """(idx, entry, mac, mac_version, kind, resident_id) of ``[start, end)`` in order."""
    if getattr(db, "dialect", "sqlite") != "postgresql":
        yield from db.execute(_ROWS, (start, end))
        return
    for raw, meta in db.execute(_PG_ROWS, (start, end)):
        index, resident, version, tag, kind = meta.split(" ", 4)
        yield (int(index), raw, bytes.fromhex(tag), int(version), kind,
               None if resident == "N" else int(resident))


def scan(db: Any, task: Task) -> ChunkResult:
    """Check ``task``'s entries (``db.execute`` with ``?`` parameters); stops at the
    first problem, returning everything up to it."""
    out, leaves, runs = ChunkResult(task.start), bytearray(), []
    stack, expected, cuts, sha = out.stack, task.start, set(task.cuts), hashlib.sha256
    for index, raw, tag, version, kind, resident_id in rows(db, task.start, task.end):
        if index != expected:
            out.problem = (expected, f"entry {expected} is missing (next is {index})")
            break
        if problem := entry_problem(index, raw, kind, resident_id):
            out.problem = (index, f"entry {index}: {problem}")
            break
        leaf = sha(b"\x00" + raw.encode("utf-8")).digest()
        if not tag:
            if runs and runs[-1][1] == index:
                runs[-1][1] = index + 1
            else:
                runs.append([index, index + 1])
        elif index >= task.tail:
            out.macs.append((index, leaf, bytes(tag), int(version)))
        if index >= task.leaves_from:
            leaves += leaf
        height = 0  # merkle.push, inlined: this loop runs a million times
        while stack and stack[-1][0] == height:
            leaf = sha(b"\x01" + stack.pop()[1] + leaf).digest()
            height += 1
        stack.append((height, leaf))
        expected += 1
        if expected in cuts:
            out.cuts[expected] = list(stack)
    else:
        if expected < task.end:
            row = db.execute("SELECT MIN(idx) FROM provision_log WHERE idx >= ?",
                             (task.end,)).fetchone()
            out.problem = (expected, f"entry {expected} is missing (next is {row[0]})")
    out.reached, out.leaves = expected, bytes(leaves)
    out.empty = [(max(a, task.tail), b) for a, b in runs if b > task.tail]
    early = [(a, min(b, task.tail)) for a, b in runs if a < task.tail]
    if early:
        out.uncovered = first_uncovered(early, batch_ranges(db, task.start, task.end))
    return out


def batch_ranges(db: Any, start: int, end: int) -> list[tuple[int, int]]:
    """The ``log_batches`` rows that can cover entries in ``[start, end)`` (the rows
    starting there, and the last one starting before), by their primary key."""
    found = [(int(a), int(b)) for a, b in db.execute(
        "SELECT start_idx, end_idx FROM log_batches WHERE start_idx < ? "
        "ORDER BY start_idx DESC LIMIT 1", (start,))]
    found += [(int(a), int(b)) for a, b in db.execute(
        "SELECT start_idx, end_idx FROM log_batches WHERE start_idx >= ? AND start_idx < ? "
        "ORDER BY start_idx", (start, end))]
    return found


def first_uncovered(runs: list[tuple[int, int]], ranges: list[tuple[int, int]]) -> int | None:
    """The first index of ``runs`` (sorted ``[a, b)``) in none of ``ranges`` (sorted by
    start), or None."""
    position, reach = 0, -1  # ranges[:position] merged: they cover up to ``reach``
    for a, b in runs:
        index = a
        while index < b:
            while position < len(ranges) and ranges[position][0] <= index:
                reach = max(reach, ranges[position][1])
                position += 1
            if reach <= index:
                return index
            index = reach
    return None


class _Postgres:
    """``execute`` with ``?`` parameters over a read-only psycopg connection."""

    dialect = "postgresql"

    def __init__(self, location: str) -> None:
        import psycopg

        self._db = psycopg.connect(location, autocommit=True)

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self._db.execute(sql.replace("?", "%s"), params)  # type: ignore[arg-type]


def connect(location: str, client: Any = None) -> Any:
    """A reading connection of a worker: the same database the parent verifies; as the
    parent's station role over TLS when ``client`` (its ``tls.ClientIdentity``) is given:
    the worker opens the station's TLS token for the handshake, never the station token."""
    if client is not None:
        from ..registry.backend import PostgresBackend

        return PostgresBackend(location, client)
    if location.startswith(("postgresql://", "postgres://")):
        return _Postgres(location)
    return sqlite3.connect(Path(location).resolve().as_uri() + "?mode=ro", uri=True)


def main() -> None:
    location, client, tasks = pickle.load(sys.stdin.buffer)
    db = connect(location, client)
    for task in tasks:
        result = scan(db, task)
        result.pid = os.getpid()
        pickle.dump(result, sys.stdout.buffer, protocol=pickle.HIGHEST_PROTOCOL)
        sys.stdout.buffer.flush()


if __name__ == "__main__":  # results must pickle as tools.audit.verify_scan's classes
    from tools.audit.verify_scan import main as serve

    serve()
