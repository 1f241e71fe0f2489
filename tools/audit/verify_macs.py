"""The token's part of `juki audit verify`: per-entry MACs and batch MACs of the tail.

Entries appended one by one carry their own MAC (audit-entry MAC key) over their leaf.
Entries of a group commit carry none: a ``log_batches`` row covers them, its MAC over
``batches.batch_message(start, end, MTH(start..end))``. Both are checked here, in
batches of one key version per token call.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any, Protocol

from hsm.mac import first_bad_mac
from hsm.roles import KeyRole
from hsm.token import Hsm

from . import merkle
from .batches import batch_message
from .verify_scan import first_uncovered

VERIFY_BATCH = 4096


class Broken(Exception):
    def __init__(self, index: int | None, problem: str) -> None:
        super().__init__(problem)
        self.index, self.problem = index, problem


class MacCheck(Protocol):
    def first_bad(self, version: int, items: list[tuple[bytes, bytes]]) -> int | None: ...


class TokenMacs:
    """(data, tag) pairs checked inside the token by the audit-entry MAC key."""

    def __init__(self, hsm: Hsm) -> None:
        self.hsm = hsm

    def first_bad(self, version: int, items: list[tuple[bytes, bytes]]) -> int | None:
        return first_bad_mac(self.hsm, version, items, KeyRole.AUDIT_ENTRY_MAC)


class Macs:
    """Entry MACs checked in batches of one key version; ``flush`` raises ``Broken`` at
    the first bad one."""

    def __init__(self, check: MacCheck) -> None:
        self.check, self.version = check, 0
        self.batch: list[tuple[int, bytes, bytes]] = []

    def add(self, index: int, leaf: bytes, tag: bytes, version: int) -> None:
        if version != self.version:
            self.flush()
            self.version = version
        self.batch.append((index, leaf, tag))
        if len(self.batch) >= VERIFY_BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.batch:
            return
        bad = self.check.first_bad(self.version, [(leaf, tag) for _, leaf, tag in self.batch])
        if bad is not None:
            index = self.batch[bad][0]
            raise Broken(index, f"entry {index}: MAC does not verify (altered or not ours)")
        self.batch.clear()


@dataclass(frozen=True)
class Batch:
    start: int
    end: int
    tag: bytes
    version: int


def tail_batches(db: Any, tail: int) -> list[Batch]:
    """The ``log_batches`` rows covering entries from ``tail`` on (the one straddling
    ``tail`` included: it is checked whole), by the primary key."""
    rows = list(db.execute("SELECT start_idx, end_idx, mac, mac_version FROM log_batches "
                           "WHERE start_idx < ? ORDER BY start_idx DESC LIMIT 1", (tail,)))
    rows = [r for r in rows if int(r[1]) > tail]
    rows += db.execute("SELECT start_idx, end_idx, mac, mac_version FROM log_batches "
                       "WHERE start_idx >= ? ORDER BY start_idx", (tail,)).fetchall()
    return [Batch(int(s), int(e), bytes(m), int(v)) for s, e, m, v in rows]


def _bad_batches(check: MacCheck, found: list[tuple[Batch, bytes]]) -> list[Batch]:
    """The batches whose MAC over their message does not verify."""
    bad: list[Batch] = []
    for version in sorted({b.version for b, _ in found}):
        todo = [(b, message) for b, message in found if b.version == version]
        while todo:
            position = check.first_bad(version, [(m, b.tag) for b, m in todo])
            if position is None:
                break
            bad.append(todo[position][0])
            todo = todo[position + 1:]
    return bad


def _inside(batch: Batch, ranges: list[tuple[int, int]]) -> bool:
    """Whether ``batch`` lies within one of ``ranges`` (sorted by start)."""
    position = bisect.bisect_right(ranges, (batch.start, float("inf"))) - 1
    return position >= 0 and ranges[position][1] >= batch.end


def check_batches(check: MacCheck, batches: list[Batch], leaves: bytes, leaves_from: int,
                  reached: int, size: int, empty: list[tuple[int, int]],
                  attested: list[tuple[int, int]] | None = None) -> list[Broken]:
    """Problems of the tail's batches: a batch MAC that does not verify over the MTH of
    its entries (recomputed from ``leaves``, the leaf hashes of ``[leaves_from,
    reached)``), a batch row past the log's end, an empty-MAC entry (``empty`` runs) that
    no valid batch covers. Batches past ``reached`` (the scan stopped at a problem
    there) are not checked, and not held against their entries. Batches inside
    ``attested`` ranges (another station's, proven by its signature: ``attestations``)
    are not this token's to check, and their entries count as covered."""
    attested = sorted(attested or [])
    ours = {b for b in batches if not _inside(b, attested)}
    problems, found = [], []
    for batch in batches:
        if batch.end > size and reached == size:
            problems.append(Broken(size, f"the log_batches row of entries {batch.start}.."
                                         f"{batch.end - 1} reaches past the log's end ({size} "
                                         f"entries): entries {size}..{batch.end - 1} deleted"))
        if batch.end > reached or batch.start < leaves_from or batch not in ours:
            continue
        hashes = [leaves[32 * (i - leaves_from):32 * (i - leaves_from + 1)]
                  for i in range(batch.start, batch.end)]
        found.append((batch, batch_message(batch.start, batch.end, merkle.root_of(hashes))))
    bad = _bad_batches(check, found)
    problems += [Broken(b.start, f"entries {b.start}..{b.end - 1}: their batch MAC (the "
                                 "log_batches row) does not verify: an entry of the batch "
                                 "altered, moved or not ours, or the row forged") for b in bad]
    valid = sorted([(b.start, b.end) for b, _ in found if b not in bad]
                   + [(b.start, b.end) for b in ours if b.end > reached]
                   + attested)  # not reached:
    # the scan stopped at an earlier problem, the batch could not be checked
    runs = [(a, min(b, reached)) for a, b in empty if a < reached]
    uncovered = first_uncovered(runs, valid)
    if uncovered is not None:
        problems.append(Broken(uncovered, f"entry {uncovered}: no MAC of its own and no valid "
                                          "log_batches row covers it (its batch row deleted, "
                                          "or the entry not ours)"))
    return problems
