"""`audit verify` anchored on the latest signed checkpoint, on SQLite and PostgreSQL, with
a software MAC standing in for the token (tests/integration/test_verify_anchored_token.py
runs it in SoftHSM): no MAC is checked below the anchor, the tail's per-entry and batch
MACs are, every tampering is named at the same first bad index as a check of every MAC
from index 0, and two worker processes give the same verdicts as one."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.tamper import tampering
from tools.audit import log, merkle
from tools.audit.verify import Broken, check_log
from tools.registry import Registry

VERSION = 3
CHUNK = dict(chunk=4)  # tiny tasks: many task boundaries in a small log
PARALLEL = dict(chunk=4, workers=2, parallel_from=0)  # two real worker processes


def fake_mac(message: bytes) -> bytes:
    return hashlib.sha256(b"key" + message).digest()[:16]


class SoftMacs:
    """The token's MAC check in software; remembers what it was asked."""

    def __init__(self) -> None:
        self.checked: list[bytes] = []

    def first_bad(self, version: int, items: list[tuple[bytes, bytes]]) -> int | None:
        for position, (data, tag) in enumerate(items):
            self.checked.append(data)
            if version != VERSION or fake_mac(data) != tag:
                return position
        return None


def entry(n: int) -> dict[str, Any]:
    return {"resident_id": n % 5, "station": "s", "n": n}


def build(registry: Registry, layout: list[int]) -> None:
    """Entries appended as ``layout`` says: 0 = one entry with its own MAC, k > 0 = a
    group commit of k entries (one log_batches row)."""
    for group in layout:
        with registry.transaction() as db:
            first = log.size(db)
            if group == 0:
                log.append(db, entry(first), "provision", first % 5, fake_mac, VERSION)
            else:
                log.append_batch(db, [(entry(first + i), "provision", (first + i) % 5)
                                      for i in range(group)], fake_mac, VERSION)


LAYOUT = [0, 0, 3, 0, 5, 0, 0, 4, 2, 0, 3, 0]  # 24 entries; batches 2, 6, 13, 17, 20


def roots_at(registry: Registry, *sizes: int) -> dict[int, tuple[bytes, str]]:
    db = registry.connection()
    return {s: (log.root(db, s), f"the signed checkpoint of size {s}") for s in sizes}


def verdict(registry: Registry, roots: dict[int, tuple[bytes, str]], anchor: int,
            check: SoftMacs | None = None, **options: int) -> tuple[int | None, str]:
    try:
        size = check_log(registry.connection(), roots, anchor, check or SoftMacs(), **options)
    except Broken as broken:
        return broken.index, broken.problem
    return None, f"intact, {size} entries"


def test_no_mac_is_checked_below_the_anchor(registry: Registry) -> None:
    build(registry, LAYOUT)
    roots = roots_at(registry, 5, 15, 24)
    check = SoftMacs()
    assert verdict(registry, roots, 15, check, **CHUNK) == (None, "intact, 24 entries")
    db = registry.connection()
    leaves = {merkle.leaf_hash(str(e).encode()): int(i) for i, e in
              db.execute("SELECT idx, entry FROM provision_log")}
    entries = sorted(leaves[d] for d in check.checked if d in leaves)
    assert entries == [19, 23]  # the tail's own MACs, nothing below 15
    batch_messages = [d for d in check.checked if d not in leaves]
    # the batch 13..16 straddles the anchor: checked whole; then 17..18 and 20..22
    starts = sorted(int.from_bytes(m[15:23], "big") for m in batch_messages)
    assert starts == [13, 17, 20]
    full = SoftMacs()
    assert verdict(registry, roots, 0, full, **CHUNK)[0] is None
    assert len(full.checked) == 7 + 5  # every own MAC and every batch without an anchor


def _as_superuser(db: Any) -> None:
    """The attacker owns the database: PostgreSQL's append-only triggers are off for them."""
    if db.dialect == "postgresql":
        db.execute("SET LOCAL session_replication_role = replica")


def _rewrite(registry: Registry, index: int, change: dict[str, Any]) -> None:
    with registry.transaction() as db:
        _as_superuser(db)
        raw = db.execute("SELECT entry FROM provision_log WHERE idx = ?", (index,)).fetchone()[0]
        db.execute("UPDATE provision_log SET entry = ? WHERE idx = ?",
                   (log.canonical(json.loads(raw) | change).decode(), index))


def tamper(registry: Registry, action: str, index: int) -> None:
    """Break the log as someone with SQL access but without the token would."""
    with registry.transaction() as db:
        _as_superuser(db)
        if action == "delete-entry":
            db.execute("DELETE FROM provision_log WHERE idx = ?", (index,))
        elif action == "truncate":
            db.execute("DELETE FROM provision_log WHERE idx >= ?", (index,))
        elif action == "re-attribute":
            db.execute("UPDATE provision_log SET resident_id = 99 WHERE idx = ?", (index,))
        elif action == "strip-mac":
            db.execute("UPDATE provision_log SET mac = ? WHERE idx = ?", (b"", index))
        elif action == "delete-batch":
            db.execute("DELETE FROM log_batches WHERE start_idx <= ? AND end_idx > ?",
                       (index, index))
        elif action == "forge-batch-mac":
            db.execute("UPDATE log_batches SET mac = ? WHERE start_idx <= ? AND end_idx > ?",
                       (b"\x00" * 16, index, index))
    if action == "modify":
        _rewrite(registry, index, {"station": "elsewhere"})


BATCH_OF = {i: (s, s + n) for s, n in [(2, 3), (6, 5), (13, 4), (17, 2), (20, 3)]
            for i in range(s, s + n)}
ACTIONS = ["modify", "delete-entry", "truncate", "re-attribute", "strip-mac", "delete-batch",
           "forge-batch-mac"]


@pytest.mark.parametrize("action,index,expected,says", [
    ("modify", 5, 5, "MAC does not verify"),  # below the anchor: named by the full pass
    ("modify", 7, 6, "batch MAC"),  # in a batch below the anchor: the batch's first
    ("modify", 21, 20, "batch MAC"),  # in a batch of the tail
    ("modify", 23, 23, "MAC does not verify"),  # an own MAC in the tail
    ("modify", 14, 13, "batch MAC"),  # the batch straddling the anchor
    ("delete-entry", 10, 10, "entry 10 is missing (next is 11)"),
    ("truncate", 20, 20, "log truncated"),
    ("re-attribute", 3, 3, "re-attributed"),
    ("strip-mac", 19, 19, "no MAC of its own and no valid log_batches row"),
    ("delete-batch", 20, 20, "no MAC of its own and no valid log_batches row"),
    ("forge-batch-mac", 17, 17, "batch MAC"),
    ("delete-batch", 7, 6, "still proven by the signed checkpoint of size 15"),
])
def test_tampering_is_named(registry: Registry, action: str, index: int, expected: int,
                            says: str) -> None:
    build(registry, LAYOUT)
    roots = roots_at(registry, 5, 15, 24)
    tamper(registry, action, index)
    for options in (CHUNK, {}):
        found, problem = verdict(registry, roots, 15, **options)
        assert found == expected and says in problem, problem


def test_a_batch_row_past_the_end_is_named(registry: Registry) -> None:
    build(registry, LAYOUT)
    with registry.transaction() as db, tampering(db):  # past the end: the database's own
        # rules (migration 9) refuse it, so only someone holding the owner's rights can
        db.execute("INSERT INTO log_batches (start_idx, end_idx, mac, mac_version) VALUES "
                   "(24, 30, ?, ?)", (b"\x01" * 16, VERSION))
    found, problem = verdict(registry, roots_at(registry, 15), 15)
    assert found == 24 and "entries 24..29 deleted" in problem


def test_stripped_mac_below_the_anchor_is_not_hidden(registry: Registry) -> None:
    """An own MAC removed below the anchor: no batch covers the entry; the signed root
    still proves its content, and the verdict says both."""
    build(registry, LAYOUT)
    tamper(registry, "strip-mac", 5)
    found, problem = verdict(registry, roots_at(registry, 15, 24), 15)
    assert found == 5 and "still proven by the signed checkpoint of size 15" in problem


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(action=st.sampled_from(ACTIONS), index=st.integers(0, 23), anchor=st.sampled_from(
    [5, 13, 15, 16, 24]), data=st.data())
def test_anchored_names_what_every_mac_names(tmp_path_factory, action: str, index: int,
                                             anchor: int, data: Any) -> None:
    """The anchored check (one process or two) and the check of every MAC name the same
    first bad index for any tampering that changes what the log says."""
    registry = Registry(tmp_path_factory.mktemp("v") / "registry.sqlite")
    build(registry, LAYOUT)
    roots = roots_at(registry, *sorted({5, anchor, 24}))
    tamper(registry, action, index)
    full = verdict(registry, roots, 0, **CHUNK)
    anchored = verdict(registry, roots, anchor, **CHUNK)
    if data.draw(st.booleans(), label="two workers"):
        assert verdict(registry, roots, anchor, **PARALLEL) == anchored
    # a batch MAC forged below the anchor: the entries are proven by the signed root
    cosmetic = action == "forge-batch-mac" and BATCH_OF.get(index, (0, 99))[1] <= anchor
    if not cosmetic:
        assert anchored[0] == full[0], (anchored, full)
    registry.close()


def test_two_workers_check_a_log_of_many_tasks(registry: Registry) -> None:
    build(registry, [0] * 5 + [40, 0, 17, 30] + [0] * 3)  # 96 entries
    roots = roots_at(registry, 33, 64, 96)
    assert verdict(registry, roots, 64, **PARALLEL) == (None, "intact, 96 entries")
    _rewrite(registry, 50, {"n": -1})
    assert verdict(registry, roots, 64, **PARALLEL)[0] == 46  # the batch 46..62
    assert verdict(registry, roots, 64, **CHUNK)[0] == 46


class _Elsewhere:
    """The parent's connection, but a location no worker can open."""

    def __init__(self, db: Any) -> None:
        self.db, self.location, self.dialect = db, "/nonexistent/registry.sqlite", db.dialect

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self.db.execute(sql, params)


def test_the_work_is_done_by_two_other_processes_or_else_here(registry: Registry) -> None:
    """Results come from two worker processes (not this one) in task order; a worker that
    cannot open the database leaves its tasks to this process, with the same results."""
    import os

    from tools.audit import verify_parallel

    build(registry, [0] * 3 + [30] + [0] * 2)  # 35 entries
    db = registry.connection()
    tasks = verify_parallel.plan(35, [17, 35], 20, 10, chunk=4)
    here = list(verify_parallel.results(db, tasks, workers=1))
    there = list(verify_parallel.results(db, tasks, workers=2, parallel_from=0))
    pids = {r.pid for r in there}
    assert len(pids) == 2 and 0 not in pids and os.getpid() not in pids
    assert [r.start for r in there] == [t.start for t in tasks]
    strip = [(r.stack, r.cuts, r.macs, r.empty, r.leaves, r.problem, r.reached) for r in here]
    assert [(r.stack, r.cuts, r.macs, r.empty, r.leaves, r.problem, r.reached)
            for r in there] == strip
    assert len(b"".join(r.leaves for r in here)) == 32 * 25  # leaves from 10 on
    fallback = list(verify_parallel.results(_Elsewhere(db), tasks, workers=2, parallel_from=0))
    assert {r.pid for r in fallback} == {0}
    assert [(r.stack, r.cuts, r.macs, r.empty, r.leaves, r.problem, r.reached)
            for r in fallback] == strip


@pytest.mark.parametrize("kind,resident", [("pro vision", 0), ("provision", None),
                                           (" 1 2 3 ", 0)])
def test_odd_columns_are_read_as_they_are(registry: Registry, kind: str,
                                          resident: int | None) -> None:
    """The columns compared with the entry reach the check unchanged on both databases
    (PostgreSQL's rows come packed in one text column): spaces in ``kind``, a NULL
    ``resident_id``."""
    build(registry, [0] * 3)
    with registry.transaction() as db:
        _as_superuser(db)
        db.execute("UPDATE provision_log SET kind = ?, resident_id = ? WHERE idx = 0",
                   (kind, resident))
    found, problem = verdict(registry, roots_at(registry, 3), 3)
    assert found == 0
    assert (f"the kind column says {kind!r}" if resident == 0 else
            "the resident_id column says None") in problem, problem


def _old_entry_problem(index: int, raw: str, kind: object, resident_id: object) -> str | None:
    """The check as it was before the workers (json.loads, log.canonical)."""
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


@pytest.mark.parametrize("raw", [
    '{"index":0,"kind":"k","resident_id":1}', ' {"index":0,"kind":"k","resident_id":1}',
    '{"index":0,"kind":"k","resident_id":1} ', '{"index":0,"kind":"k","resident_id":1}x',
    '{"kind":"k","index":0,"resident_id":1}', '{"index": 0,"kind":"k","resident_id":1}',
    '{"index":0,"kind":"\\u00e9","resident_id":1}', '{"index":0,"kind":"é","resident_id":1}',
    '[0]', '"x"', '', '{"index":1,"kind":"k","resident_id":1}', '{"index":0.0,"kind":"k"}',
    '{"index":0,"kind":"k","resident_id":2}', '{"index":0,"kind":"j","resident_id":1}',
    'NaN', '{"index":0,"kind":"k","resident_id":1,"x":NaN}'])
def test_the_faster_entry_check_says_what_the_old_one_said(raw: str) -> None:
    from tools.audit.verify_scan import entry_problem

    assert entry_problem(0, raw, "k", 1) == _old_entry_problem(0, raw, "k", 1)
