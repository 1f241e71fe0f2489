"""The provision log with the token's keys: proofs, checkpoints, and tampering of every
kind detected at the first bad index (hypothesis picks what to break and where)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import run_on_own_token
from tests.tamper import tampering
from tools.audit import anchors, log, merkle
from tools.audit.checkpoints import checkpoints, make_checkpoint
from tools.audit.provision import Release, record
from tools.audit.verify import verify_log
from tools.registry import Registry

RELEASE = Release("station-t", "Asia/Tokyo", "op-1", "NENKIN", "B1-57")



def fill(registry: Registry, hsm, count: int, start: int = 0) -> None:  # type: ignore[no-untyped-def]
    for i in range(start, start + count):
        record(registry, hsm, RELEASE, kind="provision", fields=["name", "address"],
               resident_id=i % 3, record_code=f"1234567890{i % 3}", card_serial=f"{i:015d}")


def test_log_proofs_and_checkpoints(registry: Registry, station, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    hsm, notes = station.hsm, tmp_path / "checkpoints"
    fill(registry, hsm, 5)
    first = make_checkpoint(registry, hsm, notes)
    assert make_checkpoint(registry, hsm, notes) == first  # nothing new: the same checkpoint
    fill(registry, hsm, 8, start=5)
    second = make_checkpoint(registry, hsm, notes)
    assert (first.size, second.size) == (5, 13)
    db = registry.connection()
    raw = [e for (e,) in db.execute("SELECT entry FROM provision_log ORDER BY idx")]
    leaves = [merkle.leaf_hash(e.encode()) for e in raw]
    assert second.root == merkle.root_of(leaves)  # stored nodes agree with a recomputation
    subtree = log.stored_subtree(db)
    for index in range(13):
        proof = merkle.inclusion_proof(index, 13, subtree)
        assert merkle.verify_inclusion(index, 13, leaves[index], proof, second.root)
    proof = merkle.consistency_proof(5, 13, subtree)
    assert merkle.verify_consistency(5, 13, first.root, second.root, proof)
    verdict = verify_log(db, hsm, notes)
    assert verdict.ok and verdict.size == 13 and verdict.checkpoints == 2
    assert [e.index for e in log.entries_of_resident(db, 1)] == [1, 4, 7, 10]
    assert json.loads(raw[0])["time_local"].endswith("+09:00")


def test_forged_checkpoints_are_rejected(registry: Registry, station, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    hsm, notes = station.hsm, tmp_path / "checkpoints"
    fill(registry, hsm, 4)
    checkpoint = make_checkpoint(registry, hsm, notes)
    with registry.transaction() as db, tampering(db):  # a root that fits edited entries, the old signature
        db.execute("UPDATE audit_checkpoints SET root = ? WHERE size = ?",
                   (merkle.leaf_hash(b"forged"), checkpoint.size))
    verdict = verify_log(registry.connection(), hsm, notes)
    assert not verdict.ok and "signature does not verify" in (verdict.problem or "")
    other = Ed25519PrivateKey.generate()  # signed, but by a key that is not the token's
    text = checkpoint.note_text(anchors.origin(registry.connection()))
    with registry.transaction() as db, tampering(db):
        db.execute("UPDATE audit_checkpoints SET root = ?, signature = ? WHERE size = ?",
                   (checkpoint.root, other.sign(text.encode()), checkpoint.size))
    assert not verify_log(registry.connection(), hsm, notes).ok
    with registry.transaction() as db, tampering(db):
        db.execute("UPDATE audit_checkpoints SET signature = ? WHERE size = ?",
                   (checkpoint.signature, checkpoint.size))
    assert verify_log(registry.connection(), hsm, notes).ok


def _rows(db) -> list[tuple[int, str, bytes]]:  # type: ignore[no-untyped-def]
    return [(int(i), str(e), bytes(m)) for i, e, m in
            db.execute("SELECT idx, entry, mac FROM provision_log ORDER BY idx")]


def tamper(registry: Registry, action: str, i: int, j: int) -> int:
    """Break the log as someone with SQL access but without the token would; the index
    the verification must name."""
    with registry.transaction() as db, tampering(db):
        rows = _rows(db)
        if action == "modify":
            fields = json.loads(rows[i][1]) | {"recipient": "SOMEONE-ELSE"}
            db.execute("UPDATE provision_log SET entry = ? WHERE idx = ?",
                       (log.canonical(fields).decode(), i))
            return i
        if action == "delete":
            db.execute("DELETE FROM provision_log WHERE idx = ?", (i,))
            return i
        if action == "truncate":
            db.execute("DELETE FROM provision_log WHERE idx >= ?", (i,))
            return i
        if action == "insert":
            for index, _, _ in reversed(rows[i:]):
                db.execute("UPDATE provision_log SET idx = ? WHERE idx = ?", (index + 1, index))
            forged = log.canonical(json.loads(rows[i][1]) | {"index": i, "card_serial": "X"})
            db.execute("INSERT INTO provision_log (idx, entry, kind, resident_id, mac, "
                       "mac_version) VALUES (?, ?, 'provision', NULL, ?, 1)",
                       (i, forged.decode(), b"\x00" * 16))
            return i
        # reorder: swap two entries with their MACs
        db.execute("UPDATE provision_log SET entry = ?, mac = ? WHERE idx = ?",
                   (rows[j][1], rows[j][2], i))
        db.execute("UPDATE provision_log SET entry = ?, mac = ? WHERE idx = ?",
                   (rows[i][1], rows[i][2], j))
        return i


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(action=st.sampled_from(["modify", "delete", "insert", "reorder", "truncate"]),
       data=st.data())
def test_any_tampering_is_detected_at_the_first_bad_index(station, action: str, data) -> None:  # type: ignore[no-untyped-def]
    size = 9
    i = data.draw(st.integers(0, size - 2), label="i")
    j = data.draw(st.integers(i + 1, size - 1), label="j")
    with tempfile.TemporaryDirectory() as directory:
        registry = Registry(Path(directory) / "registry.sqlite")
        notes = Path(directory) / "checkpoints"
        fill(registry, station.hsm, size)
        make_checkpoint(registry, station.hsm, notes)
        assert verify_log(registry.connection(), station.hsm, notes).ok
        expected = tamper(registry, action, i, j)
        verdict = verify_log(registry.connection(), station.hsm, notes)
        assert not verdict.ok
        assert verdict.first_bad_index == expected, verdict.problem
        registry.close()


def test_entries_rewritten_with_their_leaf_nodes_are_caught_by_mac_and_root(station) -> None:  # type: ignore[no-untyped-def]
    with tempfile.TemporaryDirectory() as directory:
        registry = Registry(Path(directory) / "registry.sqlite")
        notes = Path(directory) / "checkpoints"
        fill(registry, station.hsm, 6)
        checkpoint = make_checkpoint(registry, station.hsm, notes)
        with registry.transaction() as db, tampering(db):
            entry = json.loads(_rows(db)[3][1]) | {"purpose": "B4-3"}
            raw = log.canonical(entry)
            db.execute("UPDATE provision_log SET entry = ? WHERE idx = 3", (raw.decode(),))
            db.execute("UPDATE merkle_nodes SET hash = ? WHERE level = 0 AND position = 3",
                       (merkle.leaf_hash(raw),))
        verdict = verify_log(registry.connection(), station.hsm, notes)
        assert verdict.first_bad_index == 3
        db = registry.connection()
        proof = merkle.inclusion_proof(3, checkpoint.size, log.stored_subtree(db))
        assert not merkle.verify_inclusion(3, checkpoint.size, merkle.leaf_hash(raw), proof,
                                           checkpoint.root)
        assert checkpoints(db)[-1].root == checkpoint.root
        registry.close()


ROTATION_SCRIPT = """
from hsm.keys import generate_mac_key, latest_version
from hsm.roles import KeyRole
from tools.audit.checkpoints import make_checkpoint
from tools.audit.verify import verify_log
from tools.audit.provision import Release, record

notes = home.root / "audit" / "checkpoints"
release = Release("s", "Asia/Tokyo", None, "NENKIN", "B1-57")
def add(n):
    for _ in range(n):
        record(registry, hsm, release, kind="provision", fields=["name"], resident_id=1,
               record_code=None, card_serial=None)
add(3)
make_checkpoint(registry, hsm, notes)
generate_mac_key(hsm, KeyRole.AUDIT_ENTRY_MAC, latest_version(hsm, KeyRole.AUDIT_ENTRY_MAC) + 1)
add(3)
verdict = verify_log(registry.connection(), hsm, notes)
versions = [v for (v,) in registry.connection().execute(
    "SELECT mac_version FROM provision_log ORDER BY idx")]
print(json.dumps({"ok": verdict.ok, "size": verdict.size, "versions": versions}))
"""


def test_rotated_entry_mac_key_keeps_old_entries_verifying(tmp_path: Path) -> None:
    """A new audit-entry-mac version beside the old: entries made under each verify
    (run in its own process: one SoftHSM configuration per process)."""
    outcome = run_on_own_token(ROTATION_SCRIPT, tmp_path / "home", timeout=120)
    assert outcome == {"ok": True, "size": 6, "versions": [1, 1, 1, 2, 2, 2]}
