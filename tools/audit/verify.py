"""The full verification of the provision log (`juki audit verify`).

It recomputes every leaf, checks every entry's MAC (which covers its index), that the
columns used to select and attribute entries (``resident_id``, ``kind``) say what the
authenticated entry says, the index sequence, and every root the log must have: at each
signed checkpoint in the database, at each signed note of the checkpoint file outside
the database, and at the token's head. It names the first bad index, or what is missing
(deleted entries, deleted checkpoints, a re-attributed entry, a forged checkpoint).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from hsm.mac import first_bad_mac
from hsm.roles import KeyRole
from hsm.token import Hsm

from ..registry.backend import Backend
from . import anchors, log, merkle
from .checkpoints import Checkpoint, checkpoints, verifier

VERIFY_BATCH = 4096


@dataclass(frozen=True)
class LogVerdict:
    ok: bool
    size: int  # entries in the log (also when it is not intact)
    checkpoints: int
    first_bad_index: int | None
    problem: str | None

    def as_json(self) -> dict[str, object]:
        return dict(vars(self))


class Broken(Exception):
    def __init__(self, index: int | None, problem: str) -> None:
        super().__init__(problem)
        self.index, self.problem = index, problem


def _entry_problem(index: int, raw: str, kind: object, resident_id: object) -> str | None:
    try:
        fields = json.loads(raw)
    except ValueError:
        return "not JSON"
    if not isinstance(fields, dict) or fields.get("index") != index:
        return f"names index {fields.get('index') if isinstance(fields, dict) else '?'}"
    if log.canonical(fields).decode("utf-8") != raw:
        return "not in canonical form"
    if fields.get("resident_id") != resident_id:
        return (f"the resident_id column says {resident_id}, the signed entry says "
                f"{fields.get('resident_id')} (re-attributed)")
    if fields.get("kind") != kind:
        return f"the kind column says {kind!r}, the signed entry says {fields.get('kind')!r}"
    return None


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


class _Macs:
    """Entry MACs checked in the token in batches of one key version."""

    def __init__(self, hsm: Hsm) -> None:
        self.hsm, self.version = hsm, 0
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
        bad = first_bad_mac(self.hsm, self.version, [(leaf, tag) for _, leaf, tag in self.batch],
                            KeyRole.AUDIT_ENTRY_MAC)
        if bad is not None:
            index = self.batch[bad][0]
            raise Broken(index, f"entry {index}: MAC does not verify (altered or not ours)")
        self.batch.clear()


def _scan(db: Backend, hsm: Hsm, roots: dict[int, tuple[bytes, str]]) -> int:
    """Check every entry and every root along the way; the number of entries."""
    if 0 in roots and roots[0][0] != merkle.EMPTY_ROOT:
        raise Broken(0, "the checkpoint of the empty log has a wrong root")
    macs, stack, expected = _Macs(hsm), [], 0
    rows = db.execute("SELECT idx, entry, mac, mac_version, kind, resident_id "
                      "FROM provision_log ORDER BY idx")
    try:
        for index, raw, tag, version, kind, resident_id in rows:
            if index != expected:
                raise Broken(expected, f"entry {expected} is missing (next is {index})")
            if problem := _entry_problem(index, raw, kind, resident_id):
                raise Broken(index, f"entry {index}: {problem}")
            leaf = merkle.leaf_hash(raw.encode("utf-8"))
            macs.add(index, leaf, bytes(tag), int(version))
            merkle.push(stack, leaf)
            expected += 1
            if expected in roots and merkle.fold(stack) != roots[expected][0]:
                raise Broken(expected - 1, f"the root at size {expected} differs from "
                                           f"{roots[expected][1]}")
    except Broken:
        macs.flush()  # an earlier bad MAC is the first bad index
        raise
    macs.flush()
    return expected


def verify_log(db: Backend, hsm: Hsm, checkpoints_file: Path) -> LogVerdict:
    """Recompute and check everything (see the module docstring)."""
    signed = checkpoints(db)
    try:
        roots = expected_roots(db, hsm, signed, checkpoints_file)
        count = _scan(db, hsm, roots)
        longest = max(roots, default=0)
        if longest > count:
            raise Broken(count, f"log truncated: {count} entries in the database, but "
                                f"{roots[longest][1]} records {longest} (entries {count}.."
                                f"{longest - 1} deleted)")
    except Broken as broken:
        return LogVerdict(False, log.size(db), len(signed), broken.index, broken.problem)
    return LogVerdict(True, count, len(signed), None, None)
