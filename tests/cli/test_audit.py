"""The provision record through the CLI: purposes checked, provisions recorded before
release, a resident's disclosure (JSON, text, A4 HTML printed to PDF by Chromium), their
own information, and a database edit caught by `juki audit verify`."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.tamper import tampering
from tools.audit import log

from ..conftest import juki
from ..operator_helpers import operator_station, station_registry
from .test_commands import PIN, pin_file, request_file

READER0, READER1 = "Virtual PCD 00 00", "Virtual PCD 00 01"
NENKIN = ("--recipient", "NENKIN", "--purpose", "B1-57")


def issue_in(home: Path, rig_home: Path, tmp_path: Path, slot: int, name: str) -> tuple[str, str]:
    """A resident card issued at ``home`` in rig slot ``slot``: (serial, record code)."""
    directory = tmp_path / name
    directory.mkdir()
    juki(rig_home, "rig", "insert", "--slot", str(slot), "--state", str(directory / "card.json"))
    request = request_file(directory)
    out = json.loads(juki(home, "issue", "resident", str(request), "--reader",
                          READER0 if slot == 0 else READER1, "--pin-file",
                          str(pin_file(directory)), "--json").stdout)
    return out["card_serial"], json.loads(request.read_text())["resident_code"]


def print_to_pdf(html_file: Path, pdf: Path) -> str:
    chromium = shutil.which("chromium")
    assert chromium, "chromium is not installed (make deps)"
    profile = pdf.parent / "chromium-profile"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", f"--user-data-dir={profile}", "--no-pdf-header-footer",
                    f"--print-to-pdf={pdf}", html_file.as_uri()],
                   check=True, capture_output=True, timeout=120)
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True,
                          capture_output=True, text=True).stdout


def logged(home: Path, index: int) -> dict:
    """The provision log entry at ``index`` as the station's registry holds it."""
    entry = log.entry_at(station_registry(home).connection(), index)
    assert entry is not None, f"no provision log entry {index}"
    return entry.fields


def checkpoints_prove_and_catch_an_edit(home: Path, provision: int) -> None:
    """The tail of the test above: signed checkpoints, an inclusion and a consistency
    proof, then an edited row (the provision at index ``provision``) that `audit
    verify` catches."""
    first = json.loads(juki(home, "audit", "checkpoint", "--json").stdout)
    proof = json.loads(juki(home, "audit", "proof", "--index", str(provision),
                            "--json").stdout)
    assert proof["verified"] and proof["size"] == first["size"] and proof["proof"]
    juki(home, "verify", *NENKIN, "--reader", READER0, input=f"{PIN}\n")
    second = json.loads(juki(home, "audit", "checkpoint", "--json").stdout)
    assert second["size"] == first["size"] + 1
    consistent = json.loads(juki(home, "audit", "consistency", "--old", str(first["size"]),
                                 "--json").stdout)
    assert consistent["verified"] and consistent["new"] == second["size"]
    assert json.loads(juki(home, "audit", "verify", "--json").stdout)["ok"]
    registry = station_registry(home)
    with registry.transaction() as db, tampering(db):
        edited = db.execute("UPDATE provision_log SET entry = replace(entry, 'NENKIN', "
                            "'NENKIM') WHERE idx = ?", (provision,))
        assert edited.rowcount == 1
    broken = json.loads(juki(home, "audit", "verify", "--json", check=1).stdout)
    assert broken["first_bad_index"] == provision and "MAC" in broken["problem"]


def incidental_is_the_code_change(own: dict, old: str, new: str) -> None:
    """付随情報 of `audit self`: the record code's change, date and reason, proven; no code."""
    incidental = own["incidental_information"]
    assert [(i["event"], i["reason"], i["proof_verified"]) for i in incidental] == [
        ("record-code-changed", "転居", True)] and own["checkpoint"]["signature_ok"]
    assert old not in json.dumps(incidental) and new not in json.dumps(incidental)
    assert incidental[0]["date"] == incidental[0]["time_local"][:10]


def test_provisions_are_recorded_and_disclosed_to_the_resident(rig_home: Path,
                                                              tmp_path: Path) -> None:
    home = operator_station(rig_home, tmp_path / "station")
    serial, code = issue_in(home, rig_home, tmp_path, 0, "yamada")
    other_serial, _ = issue_in(home, rig_home, tmp_path, 1, "other")

    recipients = json.loads(juki(home, "audit", "recipients", "--json").stdout)
    assert {"code": "B1-57", "description": "国民年金法による年金である給付の支給に関する事務"} \
        in next(r for r in recipients if r["id"] == "NENKIN")["purposes"]

    read = json.loads(juki(home, "card", "read", *NENKIN, "--reader", READER0, "--json",
                           input=f"{PIN}\n").stdout)
    provision = read["provision_entry"]  # issuance's 操作履歴 events come before it
    assert read["name"] and {k: logged(home, provision)[k] for k in (
        "kind", "recipient", "purpose", "card_serial")} == {
        "kind": "provision", "recipient": "NENKIN", "purpose": "B1-57", "card_serial": serial}
    refused = juki(home, "card", "read", "--recipient", "NENKIN", "--purpose", "B5-4",
                   "--reader", READER0, input=f"{PIN}\n", check=7)
    assert "may not receive" in refused.stderr and "name" not in refused.stdout
    assert logged(home, provision + 1)["kind"] == "refusal"
    verdict = json.loads(juki(home, "verify", "--recipient", "MOFA-PASSPORT", "--purpose", "B1-7",
                              "--reader", READER0, "--json", input=f"{PIN}\n").stdout)
    assert verdict["genuine"] and verdict["provision_entry"] == provision + 2
    assert logged(home, provision + 2)["kind"] == "provision"
    juki(home, "verify", *NENKIN, "--reader", READER1, input=f"{PIN}\n")  # someone else's
    changed = json.loads(juki(home, "resident", "change-code", "--code", code, "--reason",
                              "転居", "--reader", READER0, "--json").stdout)
    juki(home, "card", "read", "--what", "all", "--recipient", "MUNI-TAX", "--purpose", "B4-3",
         "--reader", READER0, input=f"{PIN}\n")

    report = json.loads(juki(home, "audit", "disclose", "--code", code, "--json").stdout)
    entries = report["entries"]
    assert [(e["recipient"], e["purpose"], e["kind"]) for e in entries] == [
        ("NENKIN", "B1-57", "provision"), ("MOFA-PASSPORT", "B1-7", "provision"),
        ("MUNI-TAX", "B4-3", "provision"), ("SELF", "DISCLOSURE", "disclosure")]
    assert entries[0]["fields"] == ["address", "birth_date", "name", "sex"]
    assert entries[2]["record_code"] == changed["new_code"]  # after the change, same resident
    assert all(e["proof_verified"] for e in entries) and report["checkpoint_signature_ok"]
    assert all(e["card_serial"] != other_serial for e in entries)
    assert set(report["record_codes"]) == {code, changed["new_code"]}

    html_file = tmp_path / "report.html"
    juki(home, "audit", "disclose", "--card", serial, "--format", "html", "--out", str(html_file))
    page = html_file.read_text(encoding="utf-8")
    assert "本人確認情報の提供状況の開示" in page and "日本年金機構" in page
    assert "付随情報" in page and "住民票コードの変更" in page and "転居" in page
    text = print_to_pdf(html_file, tmp_path / "report.pdf")
    assert "日本年金機構" in text and "外務省" in text and "検証済" in text
    # three provisions, two disclosures and the record code's change (付随情報), all proven
    assert text.count("検証済") == 6

    own = json.loads(juki(home, "audit", "self", "--code", changed["new_code"], "--reader",
                          READER0, "--json", input="2468\n").stdout)  # their card, auth PIN
    assert own["identity"]["name"] and own["record_code"] == changed["new_code"]
    assert own["requester"] == {"kind": "resident", "card_serial": serial, "proof":
                                "JPKI user-authentication signature over a token challenge"}
    assert sorted(h["status"] for h in own["code_history"]) == ["active", "retired"]
    incidental_is_the_code_change(own, code, changed["new_code"])

    checkpoints_prove_and_catch_an_edit(home, provision)


def test_card_read_without_a_recipient_releases_nothing(rig_home: Path, tmp_path: Path) -> None:
    home = operator_station(rig_home, tmp_path / "station")
    result = juki(home, "card", "read", "--reader", READER0, input=f"{PIN}\n", check=2)
    assert "--recipient and --purpose" in result.stderr
    log = station_registry(home).connection()
    assert log.execute("SELECT count(*) FROM provision_log").fetchone()[0] == 0


def test_nothing_is_released_when_the_record_cannot_be_written(rig_home: Path,
                                                               tmp_path: Path) -> None:
    home = operator_station(rig_home, tmp_path / "station")
    issue_in(home, rig_home, tmp_path, 0, "resident")
    registry = station_registry(home)
    with registry.transaction() as db:  # the database refuses every new provision entry
        if registry.dialect == "sqlite":
            db.execute("CREATE TRIGGER no_room BEFORE INSERT ON provision_log "
                       "BEGIN SELECT RAISE(ABORT, 'database full'); END")
        else:
            db.execute("CREATE FUNCTION no_room() RETURNS trigger AS $$ BEGIN "
                       "RAISE EXCEPTION 'database full'; END $$ LANGUAGE plpgsql")
            db.execute("CREATE TRIGGER no_room BEFORE INSERT ON provision_log FOR EACH ROW "
                       "EXECUTE FUNCTION no_room()")
    result = juki(home, "card", "read", *NENKIN, "--reader", READER0, "--json",
                  input=f"{PIN}\n", check=5)
    assert "nothing was released" in result.stderr and "database full" in result.stderr
    assert '"name"' not in result.stdout and "鈴木" not in result.stdout + result.stderr
    code = juki(home, "card", "code", *NENKIN, "--reader", READER0, input=f"{PIN}\n",
                check=5)  # card code presents the credential of --with (the PIN) since issue 12
    assert "resident record code" not in code.stdout
