"""`juki provide batch` as typed, on a station using the rig's SoftHSM token: the result
file, the provision entries and their batch MACs checked in the token, `audit verify`
over the batches, a refused purpose (recorded, no result), a malformed request (exit 2,
nothing recorded or written), a progress bar on request."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

from hsm.mac import check_mac
from hsm.roles import KeyRole
from tools.audit import log, merkle
from tools.audit.batches import batch_message
from tools.registry import Registry, new_record_code

from ..conftest import juki
from ..operator_helpers import operator_station, station_registry

NENKIN = ("--recipient", "NENKIN", "--purpose", "B1-57")
FOUR = {"name": "年金　太郎", "birth_date": "1950-02-03", "sex": "1",
        "address": "東京都千代田区霞が関一丁目2番2号"}


def residents(registry: Registry, count: int) -> list[str]:
    codes = []
    for i in range(count):
        code = new_record_code()
        registry.begin_issuance(f"PB{i:04d}", "resident", code, "131016", dt.date(2035, 1, 1))
        registry.complete_issuance(f"PB{i:04d}", b"cert", identity={
            **FOUR, "name": f"年金　太郎{i}"})
        codes.append(code)
    return codes


def batch_macs_verify(home: Path, station) -> int:  # type: ignore[no-untyped-def]
    """Every log_batches row's MAC, checked in the token over its range's leaves."""
    db = station_registry(home).connection()
    leaves = [merkle.leaf_hash(str(raw).encode()) for (raw,) in db.execute(
        "SELECT entry FROM provision_log ORDER BY idx")]
    rows = list(db.execute("SELECT start_idx, end_idx, mac, mac_version FROM log_batches"))
    for start, end, tag, version in rows:
        message = batch_message(start, end, merkle.root_of(leaves[start:end]))
        assert check_mac(station.hsm, int(version), message, bytes(tag), KeyRole.AUDIT_ENTRY_MAC)
        moved = batch_message(start + 1, end + 1, merkle.root_of(leaves[start:end]))
        assert not check_mac(station.hsm, int(version), moved, bytes(tag),
                             KeyRole.AUDIT_ENTRY_MAC)
    return len(rows)


def test_provide_batch_end_to_end(rig_home: Path, station, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    home = operator_station(rig_home, tmp_path / "station")
    registry = station_registry(home)
    codes = residents(registry, 20)
    old = codes[3]
    _, new = registry.reserve_new_code(old)
    registry.commit_code_change(registry.resident_of_code(old)[0], old, new, "転居")  # type: ignore[index]
    before = log.size(registry.connection())
    request = tmp_path / "request.csv"
    request.write_text("ref,record_code\n" + "".join(f"R{i},{c}\n" for i, c in enumerate(codes))
                       + f"R20,{new_record_code()}\n", encoding="utf-8")
    out = tmp_path / "result.csv"
    summary = json.loads(juki(home, "provide", "batch", str(request), *NENKIN, "--out", str(out),
                              "--chunk", "8", "--json").stdout)
    assert {k: summary[k] for k in ("rows", "matched", "changed_since", "no_match", "entries")} \
        == {"rows": 21, "matched": 19, "changed_since": 1, "no_match": 1, "entries": 21}
    result = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["status"] for r in result] == ["match"] * 3 + ["changed-since"] + \
        ["match"] * 16 + ["no-match"]
    assert result[3]["record_code"] == new and result[3]["changed_on"]
    assert result[5]["name"] == "年金　太郎5" and result[5]["record_code"] == codes[5]
    for row in result[:20]:
        entry = log.entry_at(registry.connection(), int(row["entry"])).fields  # type: ignore[union-attr]
        assert entry["record_code"] == row["record_code"] and entry["recipient"] == "NENKIN"
        assert entry["detail"].endswith(f"row {row['row']}") and "年金" not in entry["detail"]
    first, last = summary["first_index"], summary["last_index"]
    assert first >= before and last == first + 20  # after the recipient table's load event
    assert [int(r["entry"]) for r in result] == list(range(first, last + 1))
    assert batch_macs_verify(home, station) == 3  # 21 rows in chunks of 8: 3 group commits
    verdict = json.loads(juki(home, "audit", "verify", "--json").stdout)
    assert verdict["ok"] and verdict["size"] == last + 1

    refused = juki(home, "provide", "batch", str(request), "--recipient", "NENKIN",
                   "--purpose", "B5-4", "--out", str(tmp_path / "refused.csv"), check=7)
    assert "may not receive" in refused.stderr and not (tmp_path / "refused.csv").exists()
    assert log.entry_at(registry.connection(), last + 1).fields["kind"] == "refusal"  # type: ignore[union-attr]

    bad = tmp_path / "bad.csv"
    bad.write_text(f"record_code\n{codes[0]}\n{codes[1][:10]}x\n", encoding="utf-8")
    malformed = juki(home, "provide", "batch", str(bad), *NENKIN, "--out",
                     str(tmp_path / "bad-result.csv"), check=2)
    assert "row 2 (line 3), column record_code" in malformed.stderr
    assert log.size(registry.connection()) == last + 2  # nothing recorded
    assert not list(tmp_path.glob("bad-result.csv*"))  # nothing written

    shown = juki(home, "provide", "batch", str(request), *NENKIN, "--progress")
    assert "provide batch" in shown.stderr and "rows 21: 19 match" in shown.stdout
    assert (tmp_path / "request.csv.result.csv").exists()
    exists = juki(home, "provide", "batch", str(request), *NENKIN, check=2)
    assert "exists" in exists.stderr


def test_batch_entries_are_disclosed_to_the_resident_with_proofs(rig_home: Path,  # type: ignore[no-untyped-def]
                                                                 tmp_path: Path) -> None:
    home = operator_station(rig_home, tmp_path / "station")
    codes = residents(station_registry(home), 3)
    request = tmp_path / "request.csv"
    request.write_text("record_code\n" + "".join(f"{c}\n" for c in codes), encoding="utf-8")
    juki(home, "provide", "batch", str(request), *NENKIN, "--out", str(tmp_path / "r.csv"))
    juki(home, "audit", "checkpoint")
    report = json.loads(juki(home, "audit", "disclose", "--code", codes[1], "--json").stdout)
    [entry] = [e for e in report["entries"] if e["kind"] == "provision"]
    assert (entry["recipient"], entry["purpose"], entry["record_code"]) == (
        "NENKIN", "B1-57", codes[1])
    assert entry["proof_verified"] and report["checkpoint_signature_ok"]


def test_a_database_fault_mid_batch_leaves_only_committed_chunks(rig_home: Path,  # type: ignore[no-untyped-def]
                                                                 tmp_path: Path) -> None:
    home = operator_station(rig_home, tmp_path / "station")
    registry = station_registry(home)
    codes = residents(registry, 12)
    request = tmp_path / "request.csv"
    request.write_text("record_code\n" + "".join(f"{c}\n" for c in codes), encoding="utf-8")
    juki(home, "audit", "recipients")  # the recipient table's load event comes first
    limit = log.size(registry.connection()) + 5  # the database fills up in chunk 2
    with registry.transaction() as db:
        if registry.dialect == "sqlite":
            db.execute(f"CREATE TRIGGER no_room BEFORE INSERT ON provision_log WHEN NEW.idx "
                       f">= {limit} BEGIN SELECT RAISE(ABORT, 'database full'); END")
        else:
            db.execute(f"CREATE FUNCTION no_room() RETURNS trigger AS $$ BEGIN IF NEW.idx >= "
                       f"{limit} THEN RAISE EXCEPTION 'database full'; END IF; RETURN NEW; "
                       "END $$ LANGUAGE plpgsql")
            db.execute("CREATE TRIGGER no_room BEFORE INSERT ON provision_log FOR EACH ROW "
                       "EXECUTE FUNCTION no_room()")
    out = tmp_path / "result.csv"
    failed = juki(home, "provide", "batch", str(request), *NENKIN, "--out", str(out),
                  "--chunk", "5", check=5)
    assert "stopped at row 6: rows 1-5 were provided" in failed.stderr
    assert "database full" in failed.stderr and str(out) + ".partial" in failed.stderr
    assert not out.exists()
    partial = list(csv.DictReader((tmp_path / "result.csv.partial").open(encoding="utf-8")))
    assert [r["record_code"] for r in partial] == codes[:5]
    assert log.size(registry.connection()) == limit
    assert "年金" not in failed.stdout + failed.stderr
