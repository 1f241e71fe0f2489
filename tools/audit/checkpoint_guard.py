"""What a new checkpoint may sign: only entries whose MACs the token checked.

`audit verify` checks no MAC below the latest signed checkpoint: the signed root proves
those entries. That holds only if the token never signs a root over entries it has not
authenticated. Someone with SQL access could otherwise edit an entry of the tail and
recompute its Merkle nodes (no key needed), and the next checkpoint (every disclosure
makes one) would sign the edit. So the root a checkpoint signs is computed here, not read
from the stored nodes: the previous signed checkpoint's frontier (checked against its
signed root), then every later entry's leaf, each entry's own MAC or its batch MAC
checked in the token (another station's entries: its signed attestation, checked with
its certified key, ``attestations``); and the stored tree must agree with it.
"""

from __future__ import annotations

from hsm.token import Hsm

from ..errors import LogTamperedError
from ..registry.backend import Backend
from . import log, merkle
from .attestations import Covered, Peers, Trust, check_foreign, tail_attestations, trust_for
from .verify_macs import Broken, Macs, TokenMacs, check_batches, tail_batches
from .verify_scan import Task, scan


def _refuse(problem: str) -> LogTamperedError:
    return LogTamperedError(f"no checkpoint was signed: {problem} (see `juki audit verify`)")


def _tail_problem(db: Backend, hsm: Hsm, start: int, size: int,
                  trust: Trust) -> tuple[bytes, int]:
    """Check entries ``[start, size)``: this token's by their MACs, other stations' by
    their signed attestations; (the leaf hashes from the returned index on, that index).
    Raises at the first problem."""
    batches = tail_batches(db, start)
    foreign = trust.foreign(tail_attestations(db, start))
    leaves_from = max(0, min([start, *(b.start for b in batches), *(a.start for a in foreign)]))
    result = scan(db, Task(leaves_from, size, (), start, leaves_from))
    check, covered = TokenMacs(hsm), Covered(foreign)
    problems = [Broken(*result.problem)] if result.problem else []
    macs = Macs(check)
    try:
        for item in result.macs:
            if not covered.holds(item[0]):
                macs.add(*item)
        macs.flush()
    except Broken as broken:
        problems.append(broken)
    problems += check_batches(check, batches, result.leaves, leaves_from, result.reached,
                              size, result.empty, covered.ranges)
    problems += check_foreign(db, trust, foreign, result.leaves, leaves_from, result.reached,
                              size)
    if problems:
        raise _refuse(min(problems, key=lambda b: b.index or 0).problem)
    return result.leaves, leaves_from


def proven_root(db: Backend, hsm: Hsm, previous: tuple[int, bytes] | None, size: int,
                trust: Trust | None = None) -> bytes:
    """The root of the first ``size`` entries, from ``previous`` (size, root) of the
    latest checkpoint (its signature already checked by the caller) and the entries
    after it; ``LogTamperedError`` if an entry, a MAC, an attestation, a stored node or
    the previous frontier is not what it must be. ``trust``: the other stations' keys
    (none given: only this token's entries can be proven)."""
    trust = trust or trust_for(db, hsm, Peers())
    start, stack = 0, []
    if previous is not None:
        start, root = previous
        if size < start:
            raise _refuse(f"the log has {size} entries, the latest signed checkpoint {start}")
        stack = log.frontier(db, start)
        if merkle.fold(stack) != root:
            raise _refuse(f"the stored Merkle nodes of the first {start} entries differ from "
                          "the latest signed checkpoint")
    leaves, leaves_from = _tail_problem(db, hsm, start, size, trust)
    for index in range(start, size):
        offset = 32 * (index - leaves_from)
        merkle.push(stack, leaves[offset:offset + 32])
    root = merkle.fold(stack)
    if size and log.root(db, size) != root:
        raise _refuse(f"the stored Merkle nodes of the log of {size} entries differ from its "
                      "entries")
    return root
