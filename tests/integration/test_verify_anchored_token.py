"""Checkpoint-anchored `audit verify` with the token's keys (SoftHSM): own MACs and batch
MACs made in the token, two worker processes, and the attack the anchor invites: edit an
entry after the last checkpoint, recompute its Merkle nodes (no key needed) and wait for
the next checkpoint to sign it. The checkpoint refuses; verify names the entry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hsm.keys import current_version
from hsm.mac import mac
from hsm.roles import KeyRole
from tools.audit import log, merkle
from tools.audit.checkpoints import latest, make_checkpoint
from tools.audit.provision import Release, record
from tools.audit.verify import verify_log
from tools.errors import LogTamperedError
from tools.registry import Registry

RELEASE = Release("station-t", "Asia/Tokyo", "op-1", "NENKIN", "B1-57")
WORKERS = dict(workers=2, parallel_from=0, chunk=4)


def fill(registry: Registry, hsm, count: int) -> None:  # type: ignore[no-untyped-def]
    for i in range(count):
        record(registry, hsm, RELEASE, kind="provision", fields=["name"], resident_id=i % 3,
               record_code=None, card_serial=f"{i:015d}")


def group(registry: Registry, hsm, count: int) -> None:  # type: ignore[no-untyped-def]
    version = current_version(hsm, KeyRole.AUDIT_ENTRY_MAC)
    with registry.transaction() as db:
        first = log.size(db)
        log.append_batch(db, [({"station": "station-t", "resident_id": 1, "n": first + i},
                               "provision", 1) for i in range(count)],
                         lambda data: mac(hsm, version, data, KeyRole.AUDIT_ENTRY_MAC), version)


def edit_and_rebuild(registry: Registry, index: int) -> None:
    """The attacker: another recipient in entry ``index``, every Merkle node recomputed."""
    with registry.transaction() as db:
        if db.dialect == "postgresql":
            db.execute("SET LOCAL session_replication_role = replica")
        raw = db.execute("SELECT entry FROM provision_log WHERE idx = ?", (index,)).fetchone()[0]
        db.execute("UPDATE provision_log SET entry = ? WHERE idx = ?",
                   (log.canonical(json.loads(raw) | {"recipient": "ELSEWHERE"}).decode(), index))
        leaves = [merkle.leaf_hash(str(e).encode()) for (e,) in
                  db.execute("SELECT entry FROM provision_log ORDER BY idx")]
        db.execute("DELETE FROM merkle_nodes")
        stack: list[tuple[int, bytes]] = []
        for position, leaf in enumerate(leaves):
            db.execute("INSERT INTO merkle_nodes VALUES (0, ?, ?)", (position, leaf))
            height, value = 0, leaf
            while stack and stack[-1][0] == height:
                value = merkle.node_hash(stack.pop()[1], value)
                height += 1
                db.execute("INSERT INTO merkle_nodes VALUES (?, ?, ?)",
                           (height, position >> height, value))
            stack.append((height, value))


@pytest.mark.parametrize("index,named,says", [(8, 8, "entry 8: MAC does not verify"),
                                              (12, 10, "entries 10..14: their batch MAC")])
def test_a_checkpoint_never_signs_an_edited_tail(registry: Registry, station, tmp_path: Path,
                                                 index: int, named: int, says: str) -> None:  # type: ignore[no-untyped-def]
    hsm, notes = station.hsm, tmp_path / "checkpoints"
    fill(registry, hsm, 6)
    make_checkpoint(registry, hsm, notes)
    fill(registry, hsm, 4)
    group(registry, hsm, 5)  # entries 10..14
    assert verify_log(registry.connection(), hsm, notes, **WORKERS).ok
    edit_and_rebuild(registry, index)
    with pytest.raises(LogTamperedError, match=f"no checkpoint was signed: {says}"):
        make_checkpoint(registry, hsm, notes)
    assert latest(registry.connection()).size == 6  # nothing signed
    for options in ({}, WORKERS):
        verdict = verify_log(registry.connection(), hsm, notes, **options)
        assert not verdict.ok and verdict.first_bad_index == named, verdict.problem
        assert says in (verdict.problem or "")


def test_anchored_verify_with_the_token_and_two_workers(registry: Registry, station,
                                                        tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    hsm, notes = station.hsm, tmp_path / "checkpoints"
    fill(registry, hsm, 5)
    group(registry, hsm, 7)  # 5..11
    make_checkpoint(registry, hsm, notes)
    group(registry, hsm, 6)  # 12..17
    fill(registry, hsm, 2)
    first = verify_log(registry.connection(), hsm, notes)
    assert first.ok and first.size == 20 and first.checkpoints == 1
    assert verify_log(registry.connection(), hsm, notes, **WORKERS) == first
    edit_and_rebuild(registry, 3)  # below the anchor: the full pass names it
    for options in ({}, WORKERS):
        verdict = verify_log(registry.connection(), hsm, notes, **options)
        assert verdict.first_bad_index == 3 and "entry 3: MAC does not verify" in (
            verdict.problem or ""), verdict.problem
