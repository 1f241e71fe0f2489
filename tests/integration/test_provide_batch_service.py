"""`juki provide batch` through the station service: the operator's client reads the
request and writes the result (owned by the operator's uid, never opened by the service
itself), and the provision is recorded in the service's registry before it is written."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from tools.registry import new_record_code
from tools.rig.service import Service, operator_file

from .test_station_service import issue_through


def test_provide_batch_through_the_service(service: Service, rig_home: Path,
                                           tmp_path: Path) -> None:
    serial = issue_through(service, rig_home, tmp_path)
    listed = json.loads(service.client("card", "show", serial, "--json").stdout)
    code = listed["resident_code"]
    unknown = new_record_code()
    operator_file(service, "agency.csv", f"record_code,ref\n{code},A\n{unknown},B\n", 0o644)
    summary = json.loads(service.client("provide", "batch", "agency.csv", "--recipient",
                                        "NENKIN", "--purpose", "B1-57", "--out", "answer.csv",
                                        "--json").stdout)
    assert (summary["rows"], summary["matched"], summary["no_match"], summary["entries"]) == (
        2, 1, 1, 2)
    answer = service.work / "answer.csv"
    assert answer.stat().st_uid == os.stat(service.work).st_uid  # written by the client
    assert answer.stat().st_mode & 0o077 == 0  # private: it holds identity information
    assert not (service.work / "answer.csv.partial").exists()
    rows = list(csv.DictReader(answer.open(encoding="utf-8")))
    assert [(r["ref"], r["status"], r["record_code"]) for r in rows] == [
        ("A", "match", code), ("B", "no-match", "")]
    assert rows[0]["name"] and int(rows[0]["entry"]) == summary["first_index"]
    again = service.client("provide", "batch", "agency.csv", "--recipient", "NENKIN",
                           "--purpose", "B1-57", "--out", "answer.csv", check=2)
    assert "exists" in again.stderr and answer.read_text(encoding="utf-8").count("\n") == 3
    refused = service.client("provide", "batch", "agency.csv", "--recipient", "NENKIN",
                             "--purpose", "B5-4", "--out", "refused.csv", check=7)
    assert "may not receive" in refused.stderr
    assert not (service.work / "refused.csv").exists()
