"""Issue 11 defects 3a/3b/3c/4 and the missing Merkle node, through `juki audit`:
each attack is performed on the station's registry and is now named, exit 1."""

from __future__ import annotations

import json
from pathlib import Path

from tests.tamper import tampering
from tools.audit.anchors import checkpoints_path
from tools.audit.checkpoints import make_checkpoint
from tools.audit.provision import Release, record

from ..conftest import juki
from ..operator_helpers import operator_station, station_registry

RELEASE = Release("station-c", "Asia/Tokyo", None, "NENKIN", "B1-57")


def station_with_log(rig_home: Path, tmp_path: Path, station, count: int = 6,  # type: ignore[no-untyped-def]
                     checkpoint_at: int | None = None) -> Path:
    home = operator_station(rig_home, tmp_path / "station")
    registry = station_registry(home)
    for i in range(count):
        if i == checkpoint_at:
            make_checkpoint(registry, station.hsm, checkpoints_path(home))
        record(registry, station.hsm, RELEASE, kind="provision", fields=["name"],
               resident_id=i % 2, record_code=None, card_serial=None)
    make_checkpoint(registry, station.hsm, checkpoints_path(home))
    registry.close()
    assert json.loads(juki(home, "audit", "verify", "--json").stdout)["ok"]
    return home


def test_4_proof_and_consistency_refuse_a_junk_signature(rig_home: Path, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                         station) -> None:
    home = station_with_log(rig_home, tmp_path, station, checkpoint_at=3)
    assert json.loads(juki(home, "audit", "proof", "--index", "1", "--json").stdout)["verified"]
    assert json.loads(juki(home, "audit", "consistency", "--old", "3", "--json").stdout)["verified"]
    registry = station_registry(home)
    with registry.transaction() as db, tampering(db):  # the attack: a checkpoint row signed `junk`
        db.execute("UPDATE audit_checkpoints SET signature = ? WHERE size = 6", (b"junk",))
    proof = juki(home, "audit", "proof", "--index", "1", "--json", check=1)
    assert "checkpoint of size 6 is not signed" in proof.stderr and "verified" not in proof.stdout
    consistency = juki(home, "audit", "consistency", "--old", "3", "--json", check=1)
    assert "checkpoint of size 6 is not signed" in consistency.stderr
    assert "Traceback" not in proof.stderr + consistency.stderr


def test_a_missing_merkle_node_is_named_without_a_traceback(rig_home: Path, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                            station) -> None:
    home = station_with_log(rig_home, tmp_path, station)
    registry = station_registry(home)
    with registry.transaction() as db, tampering(db):
        db.execute("DELETE FROM merkle_nodes WHERE level = 1 AND position = 1")
    result = juki(home, "audit", "proof", "--index", "0", check=1)
    assert "Merkle node (level 1, position 1) is missing" in result.stderr
    assert "Traceback" not in result.stderr


def test_3a_3b_3c_are_named_by_audit_verify(rig_home: Path, tmp_path: Path, station) -> None:  # type: ignore[no-untyped-def]
    home = station_with_log(rig_home, tmp_path, station, count=8, checkpoint_at=4)
    registry = station_registry(home)
    with registry.transaction() as db, tampering(db):  # 3a: hide entry 5 from its resident
        db.execute("UPDATE provision_log SET resident_id = NULL WHERE idx = 5")
    verdict = json.loads(juki(home, "audit", "verify", "--json", check=1).stdout)
    assert verdict["first_bad_index"] == 5 and "re-attributed" in verdict["problem"]
    with registry.transaction() as db, tampering(db):
        db.execute("UPDATE provision_log SET resident_id = 1 WHERE idx = 5")
        db.execute("DELETE FROM provision_log WHERE idx >= 6")  # 3b: after the last checkpoint
    verdict = json.loads(juki(home, "audit", "verify", "--json", check=1).stdout)
    assert verdict["first_bad_index"] == 6 and "truncated" in verdict["problem"]
    with registry.transaction() as db, tampering(db):  # 3c: the checkpoints too
        db.execute("DELETE FROM audit_checkpoints")
    text = juki(home, "audit", "verify", check=1).stdout
    assert "NOT intact" in text and "missing from the database (checkpoints deleted)" in text
