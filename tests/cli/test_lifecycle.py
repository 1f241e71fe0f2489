"""The card life cycle through the CLI: suspend/resume/revoke as seen by verify,
reissue, record-code change on card and registry, wipe of a returned card."""

from __future__ import annotations

import json
from pathlib import Path

from cardlib.checkdigits import is_valid_resident_code
from tools.rig.rig import reader_name

from ..conftest import direct_registry_target, juki
from .test_commands import PIN, READ_FOR, insert_blank, issue, pin_file, request_file


def verdict(home: Path, check: int) -> dict:
    return json.loads(juki(home, "verify", "--reader", reader_name(0), "--json", check=check,
                           input=f"{PIN}\n").stdout)


def failing(result: dict) -> dict[str, str]:
    return {c["name"]: c["detail"] for c in result["checks"] if not c["ok"]}


def test_suspend_resume_revoke_as_verify_sees_them(rig_home: Path, tmp_path: Path) -> None:
    serial = issue(rig_home, tmp_path)
    juki(rig_home, "card", "suspend", serial, "--reason", "reported at the counter")
    assert failing(verdict(rig_home, 1)) == {
        "registry_status": "registry status suspended (reported at the counter)"}
    juki(rig_home, "card", "resume", serial)
    assert verdict(rig_home, 0)["genuine"]
    juki(rig_home, "card", "revoke", serial, "--reason", "lost")
    assert failing(verdict(rig_home, 1)) == {"registry_status": "registry status revoked (lost)"}
    refused = juki(rig_home, "card", "resume", serial, "--json", check=2)
    assert "revoked: it cannot become active" in json.loads(refused.stdout)["error"]["message"]
    juki(rig_home, "card", "revoke", serial, "--reason", "misplaced", check=2)  # not a reason
    show = json.loads(juki(rig_home, "card", "show", serial, "--json").stdout)
    assert [e["to_status"] for e in show["events"]] == [
        "issuing", "active", "suspended", "active", "revoked"]
    listed = json.loads(juki(rig_home, "card", "list", "--status", "revoked", "--json").stdout)
    assert serial in [c["serial"] for c in listed]


def test_reissue_supersedes_the_old_card(rig_home: Path, tmp_path: Path) -> None:
    old = issue(rig_home, tmp_path)
    new_blank = insert_blank(rig_home, tmp_path, "second.json")
    again = juki(rig_home, "issue", "resident", str(request_file(tmp_path)), "--pin-file",
                 str(pin_file(tmp_path)), "--json", check=2)
    assert f"already holds card {old}" in json.loads(again.stdout)["error"]["message"]
    out = json.loads(juki(rig_home, "card", "reissue", old, str(request_file(tmp_path)),
                          "--pin-file", str(pin_file(tmp_path)), "--json").stdout)
    assert out["card_serial"] == new_blank and out["supersedes"] == old
    assert verdict(rig_home, 0)["card_serial"] == new_blank
    shown = json.loads(juki(rig_home, "card", "show", old, "--json").stdout)
    assert (shown["status"], shown["status_reason"]) == ("revoked", "superseded")


def test_record_code_change(rig_home: Path, tmp_path: Path) -> None:
    serial = issue(rig_home, tmp_path)
    old = json.loads(request_file(tmp_path).read_text(encoding="utf-8"))["resident_code"]
    changed = json.loads(juki(rig_home, "resident", "change-code", "--code", old, "--reason",
                              "本人の請求", "--json").stdout)
    new = changed["new_code"]
    assert changed["card_serial"] == serial and new != old and is_valid_resident_code(new)
    on_card = json.loads(juki(rig_home, "card", "code", *READ_FOR, "--json",
                              input=f"{PIN}\n").stdout)
    assert on_card["resident_code"] == new
    assert [(h["previous_code"], h["reason"]) for h in on_card["history"]] == [(old, "本人の請求")]
    codes = json.loads(juki(rig_home, "card", "show", serial, "--json").stdout)["record_codes"]
    assert {c["code"]: c["status"] for c in codes} == {old: "retired", new: "active"}
    assert verdict(rig_home, 0)["genuine"]  # the card still verifies
    again = juki(rig_home, "resident", "change-code", "--code", old, "--reason", "x", "--json",
                 check=2)
    assert "not an active code" in json.loads(again.stdout)["error"]["message"]


def test_wipe_a_returned_card_and_issue_it_again(rig_home: Path, tmp_path: Path) -> None:
    serial = issue(rig_home, tmp_path)
    refused = juki(rig_home, "card", "wipe", "--json", check=2)
    assert "only a failed or a returned" in refused.stderr
    juki(rig_home, "card", "revoke", serial, "--reason", "returned")
    juki(rig_home, "card", "wipe")
    readers = json.loads(juki(rig_home, "readers", "--json").stdout)
    assert next(r for r in readers if r["card_serial"] == serial)["life_cycle"] == "OP_READY"
    other = tmp_path / "other"
    other.mkdir()
    reissued = json.loads(juki(rig_home, "issue", "resident", str(request_file(other)),
                               "--pin-file", str(pin_file(other)), "--reader", reader_name(0),
                               "--json").stdout)
    assert reissued["card_serial"] == serial  # the same physical card, a new resident
    assert verdict(rig_home, 0)["genuine"]
    events = json.loads(juki(rig_home, "card", "show", serial, "--json").stdout)["events"]
    assert [e["to_status"] for e in events][-4:] == ["revoked", "wiped", "issuing", "active"]


def test_db_upgrade_reports_the_schema(rig_home: Path) -> None:
    """The schema reported is every migration the code has, and it is really there: the
    tables of migration 7 (log batches) and 8 (which role writes as which station)."""
    out = json.loads(juki(rig_home, "db", "upgrade", "--json").stdout)
    from tools.registry import Registry
    from tools.registry.schema import MIGRATIONS

    assert out["schema_version"] == len(MIGRATIONS) >= 8
    registry = Registry(direct_registry_target(rig_home))
    try:
        assert registry.schema_version() == out["schema_version"]
        db = registry.connection()
        for table in ("log_batches", "registry_stations"):  # migrations 7 and 8
            assert db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] >= 0
    finally:
        registry.close()
