"""Issue 11 defect 7: `card read` and `card code` make the card prove itself (every check
of `juki verify`) before they read anything, and record the provision under the serial
the card proved. A card that fails a check is refused, naming the check; nothing is
released and no provision is recorded (the refusal is, with no resident and no serial)."""

from __future__ import annotations

import json
from pathlib import Path

from ..conftest import juki
from ..operator_helpers import operator_station, station_registry
from .test_audit import NENKIN, READER0, issue_in
from .test_commands import PIN


def log_entries(home: Path) -> list[tuple[str, int | None, dict]]:
    rows = station_registry(home).connection().execute(
        "SELECT kind, resident_id, entry FROM provision_log ORDER BY idx").fetchall()
    return [(kind, resident, json.loads(entry)) for kind, resident, entry in rows]


def assert_refused(home: Path, args: tuple[str, ...], failed: list[str],
                   before: int) -> dict:
    result = juki(home, *args, *NENKIN, "--reader", READER0, "--json", input=f"{PIN}\n",
                  check=1)
    error = json.loads(result.stdout)["error"]
    assert error["type"] == "CardNotGenuineError" and error["failed_checks"] == failed
    assert "is not genuine" in result.stderr and failed[0] in result.stderr
    shown = result.stdout + result.stderr
    for leaked in ("鈴木", '"name"', "individual_number", "resident record code", "provision_entry"):
        assert leaked not in shown
    # 操作履歴 events (the issuance, the recipient table loaded at first use) aside:
    entries = [e for e in log_entries(home) if e[0] != "event"]
    assert len(entries) == before + 1  # the refusal, and nothing else
    kind, resident, entry = entries[-1]
    assert (kind, resident, entry["card_serial"], entry["fields"]) == ("refusal", None, None, [])
    assert "card not genuine" in entry["detail"]
    return entry


def test_a_counterfeit_is_refused_by_card_read_and_card_code(rig_home: Path,
                                                            tmp_path: Path) -> None:
    home = operator_station(rig_home, tmp_path / "station")
    serial, _ = issue_in(home, rig_home, tmp_path, 0, "genuine")
    fake = tmp_path / "fake.json"
    juki(rig_home, "emulator", "counterfeit", "--from", str(tmp_path / "genuine" / "card.json"),
         "--to", str(fake))
    juki(rig_home, "rig", "insert", "--slot", "0", "--state", str(fake))

    entry = assert_refused(home, ("card", "read", "--what", "all"), ["certificate", "presence"],
                           0)
    assert f"claimed serial {serial}" in entry["detail"]
    assert_refused(home, ("card", "code"), ["certificate", "presence"], 1)
    assert not [e for e in log_entries(home) if e[0] == "provision"]

    # the genuine card: the provision is recorded under the serial it proved
    juki(rig_home, "rig", "insert", "--slot", "0", "--state", str(tmp_path / "genuine" / "card.json"))
    read = json.loads(juki(home, "card", "read", *NENKIN, "--reader", READER0, "--json",
                           input=f"{PIN}\n").stdout)
    kind, resident, entry = log_entries(home)[read["provision_entry"]]
    assert kind == "provision" and resident is not None and entry["card_serial"] == serial


def test_suspended_and_unknown_cards_are_refused(rig_home: Path, tmp_path: Path) -> None:
    home = operator_station(rig_home, tmp_path / "station")
    serial, _ = issue_in(home, rig_home, tmp_path, 0, "resident")
    juki(home, "card", "suspend", serial, "--reason", "reported missing")
    assert_refused(home, ("card", "read"), ["registry_status"], 0)
    assert_refused(home, ("card", "code"), ["registry_status"], 1)
    juki(home, "card", "resume", serial)

    other = operator_station(rig_home, tmp_path / "elsewhere")  # a registry that never issued it
    entry = assert_refused(other, ("card", "read"), ["card_record"], 0)
    assert f"claimed serial {serial}" in entry["detail"]
