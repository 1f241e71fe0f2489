"""The stored Merkle nodes of many inclusion proofs, read with one query per tree level
instead of one per node: a disclosure of a resident with a few dozen entries in a log of
ten million needs hundreds of nodes, and each round trip to PostgreSQL costs a fraction
of a millisecond. Same nodes, same proofs as ``log.stored_subtree``."""

from __future__ import annotations

from collections.abc import Iterable

from ..registry.backend import Backend
from . import log, merkle

_PER_QUERY = 500  # positions per IN list


def _perfect_ranges(start: int, end: int, out: set[tuple[int, int]]) -> bytes:
    """Record the stored nodes ``log.stored_subtree`` reads for ``[start, end)``."""
    n = end - start
    if n & (n - 1) == 0 and start % n == 0:
        out.add((n.bit_length() - 1, start // n))
    else:
        k = merkle.split_point(n)
        _perfect_ranges(start, start + k, out)
        _perfect_ranges(start + k, end, out)
    return b"\x00" * 32


def needed(indexes: Iterable[int], size: int) -> set[tuple[int, int]]:
    """(level, position) of every stored node the proofs of ``indexes`` in the tree of
    ``size`` leaves read."""
    wanted: set[tuple[int, int]] = set()
    for index in indexes:
        merkle.inclusion_proof(index, size, lambda a, b: _perfect_ranges(a, b, wanted))
    return wanted


def prefetched_subtree(db: Backend, indexes: Iterable[int], size: int) -> merkle.Subtree:
    """A subtree function over the nodes the proofs of ``indexes`` need, read at once;
    any other range falls back to ``log.stored_subtree`` (one query per node)."""
    by_level: dict[int, list[int]] = {}
    for level, position in needed([i for i in indexes if 0 <= i < size], size):
        by_level.setdefault(level, []).append(position)
    nodes: dict[tuple[int, int], bytes] = {}
    for level, positions in sorted(by_level.items()):
        for first in range(0, len(positions), _PER_QUERY):
            part = positions[first:first + _PER_QUERY]
            marks = ", ".join("?" * len(part))
            for position, value in db.execute(
                    f"SELECT position, hash FROM merkle_nodes WHERE level = ? AND position "
                    f"IN ({marks})", (level, *part)):
                nodes[(level, int(position))] = bytes(value)
    stored = log.stored_subtree(db)

    def subtree(start: int, end: int) -> bytes:
        n = end - start
        if n & (n - 1) == 0 and start % n == 0:
            found = nodes.get((n.bit_length() - 1, start // n))
            return found if found is not None else stored(start, end)  # missing: it raises
        k = merkle.split_point(n)
        return merkle.node_hash(subtree(start, start + k), subtree(start + k, end))

    return subtree
