"""The full verification of the provision log (`juki audit verify`).

It recomputes every leaf, checks that the columns used to select and attribute entries
(``resident_id``, ``kind``) say what the entry says, canonical form, the index sequence,
and every root the log must have: at each signed checkpoint in the database, at each
signed note of the checkpoint file outside the database, and at the token's head.

Anchored on this station's latest signed checkpoint made since migration 10 (size A):
the entries below A are proven by their leaves reproducing its signed root (and every
earlier one), so they need no token call. The tail from A on is proven by MACs: an
entry's own, or its group commit's batch MAC over the MTH of the batch (a batch
straddling A is checked whole); another station's entries by its signed attestation
under a key the station CA certified (``attestations``). A problem below A
cannot name its entry from a root alone: then the log is checked again with every MAC
from index 0, so the verdict names the first bad index exactly as a full check does.
Leaves and entries are checked by two worker processes (``verify_parallel``).

It names the first bad index, or what is missing (deleted entries, deleted
checkpoints, a re-attributed entry, a forged checkpoint, a deleted batch row).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hsm.token import Hsm

from ..registry.backend import Backend
from . import anchors, log, merkle, verify_parallel
from .attestations import Covered, Peers, Trust, check_foreign, tail_attestations, trust_for
from .checkpoints import Checkpoint, guarded, station_checkpoints, verifier
from .verify_macs import Broken, MacCheck, Macs, TokenMacs, check_batches, tail_batches
from .verify_scan import ChunkResult, entry_problem

__all__ = ["Broken", "LogVerdict", "check_log", "entry_problem", "expected_roots",
           "verify_log"]


@dataclass(frozen=True)
class LogVerdict:
    ok: bool
    size: int  # entries in the log (also when it is not intact)
    checkpoints: int
    first_bad_index: int | None
    problem: str | None

    def as_json(self) -> dict[str, object]:
        return dict(vars(self))


def expected_roots(db: Backend, hsm: Hsm, signed: list[Checkpoint],
                   checkpoints_file: Path) -> dict[int, tuple[bytes, str]]:
    """size -> (root, who says so): the database's checkpoints (signatures checked), the
    checkpoint file's notes (each must also be in the database), the token head."""
    check = verifier(db, hsm)
    roots: dict[int, tuple[bytes, str]] = {}
    for checkpoint in signed:
        if not check.ok(checkpoint):
            raise Broken(None, f"checkpoint at size {checkpoint.size}: signature does not verify")
        roots[checkpoint.size] = (checkpoint.root, f"the signed checkpoint of size {checkpoint.size}")
    in_db = {c.size: c.root for c in signed}
    try:
        notes = anchors.read_notes(checkpoints_file)
    except ValueError as exc:
        raise Broken(None, f"checkpoint file {checkpoints_file}: {exc}") from None
    for signed_note in notes:
        origin, size, root, _ = signed_note.checkpoint()
        if origin != check.origin:
            continue  # another log's note
        if not check.note_ok(signed_note):
            raise Broken(None, f"checkpoint file {checkpoints_file}: the note of size {size} "
                               "is not signed by this token's checkpoint key")
        if in_db.get(size) != root:
            raise Broken(None, f"the checkpoint of size {size} in {checkpoints_file} is "
                               + ("missing from the database (checkpoints deleted)"
                                  if size not in in_db else "not the database's"))
        roots[size] = (root, f"the checkpoint file's note of size {size}")
    head = anchors.read_head(hsm, db)
    if head is None:
        if log.size(db):
            raise Broken(None, "the token holds no head for this log (never anchored, or "
                               "removed): run `juki audit checkpoint` on an intact log")
    elif head.size in roots and roots[head.size][0] != head.root:
        raise Broken(head.size - 1, f"the token's head at size {head.size} differs from "
                                    "the signed checkpoint of that size")
    else:
        roots.setdefault(head.size, (head.root, f"the token's head (size {head.size})"))
    return roots


@dataclass
class _Pass:
    """What one pass over the log found, chunk by chunk."""

    roots: dict[int, tuple[bytes, str]]
    macs: Macs
    covered: Covered  # entries other stations' attestations answer for: no MAC asked
    stack: list[tuple[int, bytes]] = field(default_factory=list)
    leaves: bytearray = field(default_factory=bytearray)
    empty: list[tuple[int, int]] = field(default_factory=list)
    reached: int = 0
    uncovered: int | None = None
    wrong_root: Broken | None = None

    def _mac(self, item: tuple[int, bytes, bytes, int]) -> None:
        if not self.covered.holds(item[0]):
            self.macs.add(*item)

    def absorb(self, result: ChunkResult) -> None:
        """Take one task's result in index order: MACs, the roots at its cuts (a wrong
        root is kept, not raised: a MAC or batch further on may name the entry), then its
        first problem; raises ``Broken``."""
        self.reached = result.reached
        self.leaves += result.leaves
        self.empty += result.empty
        if result.uncovered is not None and self.uncovered is None:
            self.uncovered = result.uncovered
        pending = iter(result.macs)
        item = next(pending, None)
        for cut in sorted(result.cuts):
            while item is not None and item[0] < cut:
                self._mac(item)
                item = next(pending, None)
            if (self.wrong_root is None
                    and merkle.fold(self.stack + result.cuts[cut]) != self.roots[cut][0]):
                self.wrong_root = Broken(cut - 1, f"the root at size {cut} differs from "
                                                  f"{self.roots[cut][1]}")
        while item is not None:
            self._mac(item)
            item = next(pending, None)
        if result.problem is not None:
            self.macs.flush()  # an earlier bad MAC is the first bad index
            raise Broken(*result.problem)
        for height, value in result.stack:
            verify_parallel.push_subtree(self.stack, height, value)


class Uncovered(Broken):
    """An entry below the anchor with no MAC and no batch row: a deleted ``log_batches``
    row, reported although the signed root proves the entry's content."""

    def __init__(self, index: int, anchor: int) -> None:
        super().__init__(index, f"entry {index}: no MAC of its own and no log_batches row "
                                "covers it (its batch row deleted); its content is still "
                                f"proven by the signed checkpoint of size {anchor}")


def _first(problems: list[Broken]) -> Broken | None:
    return min(problems, key=lambda b: -1 if b.index is None else b.index, default=None)


def _one_pass(db: Backend, roots: dict[int, tuple[bytes, str]], tail: int, check: MacCheck,
              trust: Trust, **options: int) -> int:
    """Check the whole log, MACs (and other stations' attestations) from ``tail`` on; the
    number of entries. Raises ``Broken`` at the first problem."""
    size = log.size(db)  # after the roots: an append meanwhile is not a truncation
    low = db.execute("SELECT MIN(idx) FROM provision_log").fetchone()[0]
    if low is not None and int(low) < 0:
        raise Broken(0, f"entry 0 is missing (next is {low})")
    if 0 in roots and roots[0][0] != merkle.EMPTY_ROOT:
        raise Broken(0, "the checkpoint of the empty log has a wrong root")
    batches = tail_batches(db, tail)
    foreign = trust.foreign(tail_attestations(db, tail))
    leaves_from = max(0, min([tail, *(b.start for b in batches), *(a.start for a in foreign)]))
    cuts = sorted(s for s in roots if 0 < s <= size)
    chunk = options.pop("chunk", verify_parallel.CHUNK)
    tasks = verify_parallel.plan(size, cuts, tail, leaves_from, chunk)
    state, problems = _Pass(roots, Macs(check), Covered(foreign)), []
    try:
        for result in verify_parallel.results(db, tasks, **options):
            state.absorb(result)
        state.macs.flush()
    except Broken as broken:
        problems.append(broken)
    else:
        state.reached = size
    problems += [state.wrong_root] if state.wrong_root else []
    longest = max(roots, default=0)
    if longest > size and state.reached == size:
        problems.append(Broken(size, f"log truncated: {size} entries in the database, but "
                                     f"{roots[longest][1]} records {longest} (entries "
                                     f"{size}..{longest - 1} deleted)"))
    problems += check_batches(check, batches, bytes(state.leaves), leaves_from,
                              state.reached, size, state.empty, state.covered.ranges)
    problems += check_foreign(db, trust, foreign, bytes(state.leaves), leaves_from,
                              state.reached, size)
    first = _first(problems)
    if state.uncovered is not None and (first is None or (first.index or 0) >= tail):
        first = Uncovered(state.uncovered, tail)  # every root held: the content is proven
    if first is not None:
        raise first
    return size


def check_log(db: Backend, roots: dict[int, tuple[bytes, str]], anchor: int, check: MacCheck,
              trust: Trust | None = None, **options: int) -> int:
    """Check every entry against ``roots`` (size -> (root, who says so)), MACs (and other
    stations' attestations, by the keys ``trust`` holds) only from ``anchor`` (the latest
    signed checkpoint) on; the number of entries. A problem below the anchor is named by
    a second pass with every MAC."""
    trust = trust or Trust(set(), {})
    try:
        return _one_pass(db, roots, anchor, check, trust, **options)
    except Uncovered:
        raise
    except Broken as broken:
        if not anchor or broken.index is None or broken.index >= anchor:
            raise
        _one_pass(db, roots, 0, check, trust, **options)
        raise  # (the full pass found nothing: the first pass's problem stands)


def verify_log(db: Backend, hsm: Hsm, checkpoints_file: Path, peers: Peers | None = None,
               **options: int) -> LogVerdict:
    """Recompute and check everything (see the module docstring): this station's
    checkpoints (``peers.station_id``), its entries by their MACs, other stations' by
    their attestations under the keys ``peers.anchors`` certify. ``options`` (tests,
    bench): ``workers``, ``parallel_from``, ``chunk``."""
    peers = peers or Peers()
    trust = trust_for(db, hsm, peers)  # the log_signers certificates checked once
    signed = station_checkpoints(db, hsm, peers, trust)
    try:
        roots = expected_roots(db, hsm, signed, checkpoints_file)
        anchor = max((c.size for c in guarded(signed, peers.station_id)), default=0)
        count = check_log(db, roots, anchor, TokenMacs(hsm), trust, **options)
    except Broken as broken:
        return LogVerdict(False, log.size(db), len(signed), broken.index, broken.problem)
    return LogVerdict(True, count, len(signed), None, None)
