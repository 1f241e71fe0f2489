"""The provision log in the registry database: append-only entries, the Merkle tree's
complete subtrees (so proofs cost O(log² n) lookups, never a scan), and checkpoints.

An entry is canonical JSON (sorted keys, no spaces, UTF-8) that names its own index, so
an entry moved to another position no longer matches. Appending takes the registry's
write lock (SQLite BEGIN IMMEDIATE, PostgreSQL advisory lock): two stations appending
to one database get consecutive indexes, no gaps, no duplicates.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import LogTamperedError
from ..registry.backend import Backend
from . import batches, merkle


def canonical(entry: dict[str, Any]) -> bytes:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def size(db: Backend) -> int:
    row = db.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM provision_log").fetchone()
    return int(row[0])


class Attests(Protocol):
    """Signs an append for its station (``attestations.Attester``)."""

    def attest(self, db: Any, start: int, end: int, subtree_root: bytes) -> None: ...


class MissingNodeError(LogTamperedError):
    """A stored Merkle node that a proof or an append needs is not in the database."""


def _node(db: Backend, level: int, position: int) -> bytes:
    row = db.execute("SELECT hash FROM merkle_nodes WHERE level = ? AND position = ?",
                     (level, position)).fetchone()
    if row is None:
        raise MissingNodeError(f"the provision log's Merkle node (level {level}, position "
                               f"{position}) is missing from the database: the stored tree "
                               "was altered (see `juki audit verify`)")
    return bytes(row[0])


def append(db: Backend, fields: dict[str, Any], kind: str, resident_id: int | None,
           mac: Callable[[bytes], bytes], mac_version: int,
           attester: Attests | None = None) -> int:
    """Append one entry inside the caller's write transaction; returns its index.
    ``mac`` (the token's audit-entry key, version ``mac_version``: a rotated key keeps
    verifying what it made) authenticates the leaf, which covers the index; ``attester``
    signs it for the other stations of a shared log (``attestations``)."""
    index = size(db)
    entry = canonical({**fields, "index": index, "kind": kind})
    leaf = merkle.leaf_hash(entry)
    db.execute("INSERT INTO provision_log (idx, entry, kind, resident_id, mac, mac_version) "
               "VALUES (?, ?, ?, ?, ?, ?)", (index, entry.decode("utf-8"), kind, resident_id,
                                             mac(leaf), mac_version))
    value, level, position = leaf, 0, index
    db.execute("INSERT INTO merkle_nodes (level, position, hash) VALUES (?, ?, ?)",
               (level, position, value))
    while position & 1:  # a right child completes its parent
        value = merkle.node_hash(_node(db, level, position - 1), value)
        level, position = level + 1, position >> 1
        db.execute("INSERT INTO merkle_nodes (level, position, hash) VALUES (?, ?, ?)",
                   (level, position, value))
    if attester is not None:
        attester.attest(db, index, index + 1, leaf)  # MTH of one entry: its leaf
    return index


def frontier(db: Backend, tree_size: int) -> list[tuple[int, bytes]]:
    """The right frontier of the stored tree of ``tree_size`` leaves: its perfect
    subtrees (height, hash), left to right, one stored node per set bit of the size."""
    stack, start = [], 0
    for height in range(tree_size.bit_length() - 1, -1, -1):
        if tree_size >> height & 1:
            stack.append((height, _node(db, height, start >> height)))
            start += 1 << height
    return stack


@dataclass(frozen=True)
class Appended:
    """What ``append_batch`` wrote: entries ``[start, end)`` and the tree's new root."""

    start: int
    end: int
    root: bytes


def append_batch(db: Backend, items: list[tuple[dict[str, Any], str, int | None]],
                 mac_batch: Callable[[bytes], bytes], mac_version: int,
                 attester: Attests | None = None) -> Appended:
    """Append ``items`` (fields, kind, resident id) inside the caller's write transaction
    as one group: every row (one ``executemany``) with an empty per-entry MAC and the
    batch's key version, the Merkle nodes computed here from the stored right frontier
    (log2(n) reads, none per entry), and one ``log_batches`` row whose MAC (``mac_batch``,
    one token call) covers ``batches.batch_message(start, end, MTH(start..end))``;
    ``attester`` signs the batch for the other stations of a shared log."""
    if not items:
        raise ValueError("an empty batch appends nothing")
    start = size(db)
    stack = frontier(db, start)
    rows, nodes, leaves = [], [], []
    for offset, (fields, kind, resident_id) in enumerate(items):
        index = start + offset
        entry = canonical({**fields, "index": index, "kind": kind})
        value = merkle.leaf_hash(entry)
        leaves.append(value)
        rows.append((index, entry.decode("utf-8"), kind, resident_id, b"", mac_version))
        height = 0
        nodes.append((0, index, value))
        while stack and stack[-1][0] == height:  # a right child completes its parent
            value = merkle.node_hash(stack.pop()[1], value)
            height += 1
            nodes.append((height, index >> height, value))
        stack.append((height, value))
    end = start + len(items)
    subtree_root = merkle.root_of(leaves)
    tag = mac_batch(batches.batch_message(start, end, subtree_root))
    db.executemany("INSERT INTO provision_log (idx, entry, kind, resident_id, mac, mac_version) "
                   "VALUES (?, ?, ?, ?, ?, ?)", rows)
    db.executemany("INSERT INTO merkle_nodes (level, position, hash) VALUES (?, ?, ?)", nodes)
    db.execute("INSERT INTO log_batches (start_idx, end_idx, mac, mac_version) "
               "VALUES (?, ?, ?, ?)", (start, end, tag, mac_version))
    if attester is not None:
        attester.attest(db, start, end, subtree_root)
    return Appended(start, end, merkle.fold(stack))


def stored_subtree(db: Backend) -> merkle.Subtree:
    """MTH of any range from the stored complete subtrees."""
    def subtree(start: int, end: int) -> bytes:
        n = end - start
        if n == 1:
            return _node(db, 0, start)
        if n & (n - 1) == 0 and start % n == 0:
            return _node(db, n.bit_length() - 1, start // n)
        k = merkle.split_point(n)
        return merkle.node_hash(subtree(start, start + k), subtree(start + k, end))

    return subtree


def root(db: Backend, tree_size: int) -> bytes:
    return stored_subtree(db)(0, tree_size) if tree_size else merkle.EMPTY_ROOT


@dataclass(frozen=True)
class Entry:
    index: int
    raw: str

    @property
    def fields(self) -> dict[str, Any]:
        return json.loads(self.raw)

    @property
    def leaf(self) -> bytes:
        return merkle.leaf_hash(self.raw.encode("utf-8"))


# The resident an entry itself names, as the expression index provision_log_said_resident
# (migration 7) spells it: the query must use the same expression for the index to apply.
SAID_RESIDENT = {"sqlite": "json_extract(entry, '$.resident_id') = ?",
                 "postgresql": "(entry::jsonb ->> 'resident_id') = ?"}


def resident_query(db: Backend, resident_id: int) -> tuple[str, tuple[Any, ...]]:
    """The rows whose column or whose entry names ``resident_id``, each side by its own
    index (never a scan of the log); the SQL and its parameters."""
    said: Any = int(resident_id) if db.dialect == "sqlite" else str(int(resident_id))
    return ("SELECT idx, entry, resident_id FROM provision_log WHERE resident_id = ? OR "
            f"{SAID_RESIDENT[db.dialect]} ORDER BY idx", (int(resident_id), said))


def entries_of_resident(db: Backend, resident_id: int) -> list[Entry]:
    """A resident's entries as the entries themselves say (the ``resident_id`` column is
    only an index): a row whose column and entry disagree (an entry moved to NULL or to
    another resident) raises ``LogTamperedError`` naming its index. Both sides are found
    by index: the column's, and the expression index on the resident the entry names."""
    found = []
    for index, raw, column in db.execute(*resident_query(db, resident_id)):
        entry = Entry(int(index), str(raw))
        said = entry.fields.get("resident_id")
        if said != column:
            raise LogTamperedError(f"provision log entry {index} names resident {said} but "
                                   f"its resident_id column says {column}: the log was "
                                   "re-attributed (see `juki audit verify`)")
        if said == resident_id:
            found.append(entry)
    return found


def entry_at(db: Backend, index: int) -> Entry | None:
    row = db.execute("SELECT idx, entry FROM provision_log WHERE idx = ?", (index,)).fetchone()
    return Entry(int(row[0]), str(row[1])) if row else None
