"""Every command of the walking skeleton, as a user types it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cardlib.emulator.state import StateFile
from tools.registry import Registry, new_record_code
from tools.rig.rig import reader_name
from tools.rig.softhsm_token import init_token
from tools.station.home import StationHome

from ..conftest import ROOT, direct_registry_target, juki

FIXTURE = ROOT / "fixtures" / "requests" / "resident-suzuki.json"


def request_file(tmp_path: Path) -> Path:
    """The Suzuki request with a record code of its own (one live card per resident)."""
    path = tmp_path / "request.json"
    if not path.exists():
        raw = json.loads(FIXTURE.read_text(encoding="utf-8")) | {"resident_code": new_record_code()}
        path.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    return path
PIN = "7319"
READ_FOR = ("--recipient", "NENKIN", "--purpose", "B1-57")  # a permitted purpose


def pin_file(tmp_path: Path, value: str = PIN, mode: int = 0o600) -> Path:
    path = tmp_path / "pins.txt"
    path.write_text(f"card_info={value}\njpki_auth=2468\njpki_sign=SIGN2026\n")
    os.chmod(path, mode)
    return path


def insert_blank(home: Path, tmp_path: Path, name: str = "card.json") -> str:
    state = tmp_path / name
    juki(home, "rig", "insert", "--slot", "0", "--state", str(state))
    return StateFile(state).load().serial


def issue(home: Path, tmp_path: Path) -> str:
    serial = insert_blank(home, tmp_path)
    out = json.loads(juki(home, "issue", "resident", str(request_file(tmp_path)), "--pin-file",
                          str(pin_file(tmp_path)), "--json").stdout)
    assert out["card_serial"] == serial and out["status"] == "active"
    return serial


def test_rig_status(rig_home: Path) -> None:
    status = json.loads(juki(rig_home, "rig", "status", "--json").stdout)
    assert status["pcscd"]["running"]
    assert status["pcscd"]["isolated_network"] == (os.geteuid() == 0)
    assert [c["reader"] for c in status["cards"]] == [reader_name(0), reader_name(1)]
    assert all(c["running"] for c in status["cards"])


def test_readers_detect_profile_by_aid(rig_home: Path, tmp_path: Path) -> None:
    serial = insert_blank(rig_home, tmp_path)
    readers = json.loads(juki(rig_home, "readers", "--json").stdout)
    slot0 = next(r for r in readers if r["name"] == reader_name(0))
    assert slot0["card_present"] and slot0["profile"] == "resident"
    assert slot0["card_serial"] == serial and slot0["life_cycle"] == "OP_READY"
    assert {"COMMON", "CARD_INFO"} <= set(slot0["applications"])


def test_hsm_init_is_idempotent_and_status_lists_roles(rig_home: Path) -> None:
    again = json.loads(juki(rig_home, "hsm", "init", "--json").stdout)
    assert again["created"] is False and "BEGIN CERTIFICATE" in again["ca_certificate"]
    assert [k["created"] for k in again["keys"]] == [False] * 17
    status = json.loads(juki(rig_home, "hsm", "status", "--json").stdout)
    by_role = {k["role"]: k for k in status["keys"]}
    assert sorted(by_role) == ["audit-checkpoint-note-signer", "audit-checkpoint-signer",
                               "audit-entry-mac", "card-master-dek", "card-master-enc",
                               "card-master-mac", "cv-card-info-ca", "cv-card-info-signer",
                               "cv-mf-intermediate", "cv-root", "cv-surface-ca",
                               "cv-surface-signer", "operator-ca",
                               "operator-card-management-master", "operator-session-mac",
                               "resident-issuing-ca", "resident-sign-ca"]
    assert by_role["cv-root"]["cv_key_id"] == "7000020/001"
    assert by_role["cv-card-info-signer"]["cv_key_id"] == "7000031/001"
    assert by_role["resident-issuing-ca"]["label"] == "juki/resident-issuing-ca/v1"
    assert by_role["resident-issuing-ca"]["key_type"] == "RSA"
    assert by_role["resident-sign-ca"]["label"] == "juki/resident-sign-ca/v1"
    assert by_role["resident-sign-ca"]["key_type"] == "RSA" and by_role["resident-sign-ca"]["has_certificate"]
    assert by_role["card-master-mac"]["key_type"] == "AES" and by_role["card-master-mac"]["bits"] == 256
    for key in status["keys"]:
        assert key["sensitive"] is True and key["extractable"] is False


def test_issue_verify_and_read(rig_home: Path, tmp_path: Path) -> None:
    serial = issue(rig_home, tmp_path)
    verdict = json.loads(juki(rig_home, "verify", "--json", input=f"{PIN}\n").stdout)
    assert verdict["genuine"] is True and verdict["card_serial"] == serial
    assert all(c["ok"] for c in verdict["checks"]) and len(verdict["checks"]) == 8
    # the PIN from stdin (not a terminal): one per line
    info = json.loads(juki(rig_home, "card", "read", *READ_FOR, "--json", input=f"{PIN}\n").stdout)
    integrity = info.pop("integrity")
    assert isinstance(info.pop("provision_entry"), int)  # recorded before it was shown
    assert info == {"name": "鈴木　花子", "address": "大阪府大阪市北区中之島一丁目3番20号",
                    "birth_date": "1992-02-29", "sex": "2", "sex_label": "female"}
    assert integrity["signature_ok"] and integrity["checked"] == ["DF32"]
    assert integrity["signer"] == "7000031/001"  # the key EF 0004 certifies (cv-card-info-signer)
    text = juki(rig_home, "verify", input=f"{PIN}\n").stdout
    assert text.startswith(f"GENUINE: card {serial}")


def test_card_code_over_scp03(rig_home: Path, tmp_path: Path) -> None:
    serial = issue(rig_home, tmp_path)
    code = json.loads(request_file(tmp_path).read_text(encoding="utf-8"))["resident_code"]
    out = json.loads(juki(rig_home, "card", "code", *READ_FOR, "--json", input=f"{PIN}\n").stdout)
    assert isinstance(out.pop("provision_entry"), int)
    assert out == {"card_serial": serial, "resident_code": code, "history": []}
    trace = juki(rig_home, "-vvv", "card", "code", *READ_FOR, input=f"{PIN}\n").stderr
    assert ">> 80 50 30 00" in trace and ">> 84 82 33 00" in trace  # IU, EXTERNAL AUTH level 33
    assert b"55120933867".hex() not in trace  # the code never crosses in the clear


def test_bad_request_is_rejected_before_any_card_io(rig_home: Path, tmp_path: Path) -> None:
    serial = insert_blank(rig_home, tmp_path)
    bad = json.loads(request_file(tmp_path).read_text(encoding="utf-8")) | {"municipality_code": "271005"}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad, ensure_ascii=False), encoding="utf-8")
    result = juki(rig_home, "issue", "resident", str(path), "--pin-file", str(pin_file(tmp_path)),
                  "--json", check=2)
    error = json.loads(result.stdout)["error"]
    assert error["field"] == "municipality_code" and "check digit" in error["message"]
    assert "municipality_code" in result.stderr
    readers = json.loads(juki(rig_home, "readers", "--json").stdout)
    assert next(r for r in readers if r["card_serial"] == serial)["life_cycle"] == "OP_READY"
    # a blank card cannot prove itself, so it is refused before any PIN (issue 11, defect 7)
    refused = juki(rig_home, "card", "read", *READ_FOR, "--json", input="0000\n", check=1)
    assert json.loads(refused.stdout)["error"]["failed_checks"] == ["cv_chain"]


@pytest.mark.parametrize("content", ["{not json", "[]", '{"name": "x"}'])
def test_malformed_requests_exit_2(rig_home: Path, tmp_path: Path, content: str) -> None:
    path = tmp_path / "req.json"
    path.write_text(content)
    result = juki(rig_home, "issue", "resident", str(path), "--pin-file", str(pin_file(tmp_path)),
                  check=2)
    assert "request field" in result.stderr


def test_pin_file_readable_by_others_is_refused(rig_home: Path, tmp_path: Path) -> None:
    insert_blank(rig_home, tmp_path)
    result = juki(rig_home, "issue", "resident", str(request_file(tmp_path)), "--pin-file",
                  str(pin_file(tmp_path, mode=0o644)), check=2)
    assert "chmod 600" in result.stderr and PIN not in result.stderr


def test_wrong_pin_reports_tries_left(rig_home: Path, tmp_path: Path) -> None:
    issue(rig_home, tmp_path)
    result = juki(rig_home, "card", "read", *READ_FOR, "--json", input="0000\n", check=3)
    error = json.loads(result.stdout)["error"]
    assert error["type"] == "InvalidPinError" and error["tries_left"] == 2
    assert "0000" not in result.stderr


def test_counterfeit_and_unknown_cards_are_not_genuine(rig_home: Path, tmp_path: Path) -> None:
    issue(rig_home, tmp_path)
    fake = tmp_path / "fake.json"
    juki(rig_home, "emulator", "counterfeit", "--from", str(tmp_path / "card.json"), "--to", str(fake))
    juki(rig_home, "rig", "insert", "--slot", "0", "--state", str(fake))
    verdict = json.loads(juki(rig_home, "verify", "--json", input=f"{PIN}\n", check=1).stdout)
    assert not verdict["genuine"]
    assert [c["name"] for c in verdict["checks"] if not c["ok"]] == ["certificate", "presence"]

    insert_blank(rig_home, tmp_path, "unregistered.json")
    verdict = json.loads(juki(rig_home, "verify", "--json", input=f"{PIN}\n", check=1).stdout)
    assert verdict["genuine"] is False and verdict["checks"][-1]["name"] == "cv_chain"


def test_no_card_in_the_reader_exits_6(rig_home: Path) -> None:
    juki(rig_home, "rig", "remove", "--slot", "1")
    result = juki(rig_home, "verify", "--reader", reader_name(1), "--timeout", "0.3",
                  input=f"{PIN}\n", check=6)
    assert "no card presented" in result.stderr


def test_emulator_run_attaches_and_removal_detaches(rig_home: Path, tmp_path: Path) -> None:
    status = json.loads(juki(rig_home, "rig", "status", "--json").stdout)
    juki(rig_home, "rig", "remove", "--slot", "1")
    command = [sys.executable, "-m", "tools", "--home", str(rig_home), "emulator", "run",
               "--state", str(tmp_path / "own.json"), "--port", str(status["base_port"] + 1)]
    if status["pcscd"]["isolated_network"]:
        command += ["--netns", f"/proc/{status['pcscd']['pid']}/ns/net"]
    process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE)

    def slot1() -> dict:
        readers = json.loads(juki(rig_home, "readers", "--json").stdout)
        return next(r for r in readers if r["name"] == reader_name(1))

    try:
        deadline = time.monotonic() + 10
        while not slot1()["card_present"]:
            assert time.monotonic() < deadline, "emulated card never appeared"
            time.sleep(0.1)
        assert slot1()["card_serial"] == StateFile(tmp_path / "own.json").load().serial
    finally:
        process.terminate()
        process.wait(timeout=10)
    deadline = time.monotonic() + 10
    while slot1()["card_present"]:
        assert time.monotonic() < deadline, "removal not noticed"
        time.sleep(0.1)
    juki(rig_home, "rig", "insert", "--slot", "1")


def test_apdu_trace_redacts_the_pin(rig_home: Path, tmp_path: Path) -> None:
    insert_blank(rig_home, tmp_path)
    result = juki(rig_home, "-vvv", "issue", "resident", str(request_file(tmp_path)), "--pin-file",
                  str(pin_file(tmp_path)))
    trace = result.stderr
    assert ">> 00 24 01 80 [4] <4 bytes redacted>" in trace
    assert ">> 80 F0 80 0F" in trace  # the lock is visible
    assert PIN.encode().hex() not in trace  # never as a data field (ASCII digits in hex)
    assert f" {PIN}" not in trace and f"={PIN}" not in trace


def test_issuing_needs_a_blank_card(rig_home: Path, tmp_path: Path) -> None:
    issue(rig_home, tmp_path)
    juki(rig_home, "rig", "remove", "--slot", "1")
    try:
        result = juki(rig_home, "issue", "resident", str(request_file(tmp_path)), "--pin-file",
                      str(pin_file(tmp_path)), "--timeout", "0.5", check=6)
        assert "no blank card in any reader within 0.5 s" in result.stderr
        other = tmp_path / "other-resident"  # (the same resident is refused by the registry)
        other.mkdir()
        result = juki(rig_home, "issue", "resident", str(request_file(other)), "--pin-file",
                      str(pin_file(tmp_path)), "--reader", reader_name(0), check=3)
        assert "is not blank" in result.stderr
    finally:
        juki(rig_home, "rig", "insert", "--slot", "1")


def test_token_selected_by_environment(rig_home: Path) -> None:
    result = juki(rig_home, "hsm", "status", "--json", check=4,
                  env={"PKCS11_TOKEN_LABEL": "no-such-token"})
    assert "no token labelled 'no-such-token'" in result.stderr
    assert json.loads(result.stdout)["error"]["type"] == "TokenNotFoundError"


def test_rig_up_again_is_a_no_op(rig_home: Path) -> None:
    before = json.loads(juki(rig_home, "rig", "status", "--json").stdout)
    again = json.loads(juki(rig_home, "rig", "up", "--blank", "2", "--json").stdout)
    assert again["pcscd"]["pid"] == before["pcscd"]["pid"]
    assert [c["pid"] for c in again["cards"]] == [c["pid"] for c in before["cards"]]



def test_issuing_without_a_ca_touches_no_card(rig_home: Path, tmp_path: Path) -> None:
    """A token without the issuing CA: refused before any card I/O or registry row."""
    pin = (rig_home / "secrets" / "token.pin").read_text().strip()
    init_token(rig_home / "softhsm" / "softhsm2.conf", "empty-token", pin, pin)
    serial = insert_blank(rig_home, tmp_path)
    result = juki(rig_home, "issue", "resident", str(request_file(tmp_path)), "--pin-file",
                  str(pin_file(tmp_path)), "--json", check=4,
                  env={"PKCS11_TOKEN_LABEL": "empty-token"})
    assert json.loads(result.stdout)["error"]["type"] == "KeyNotFoundError"
    assert "juki hsm init" in result.stderr
    readers = json.loads(juki(rig_home, "readers", "--json").stdout)
    assert next(r for r in readers if r["card_serial"] == serial)["life_cycle"] == "OP_READY"
    registry = Registry(direct_registry_target(rig_home))
    try:
        assert registry.get(serial) is None
    finally:
        registry.close()


def test_softhsm_token_emptied_by_a_killed_login_is_restored(tmp_path: Path) -> None:
    """SoftHSM rewrites token.object in place at every login; a SIGKILL in that window
    leaves it empty. The station restores it from the copy the rig keeps."""
    from tools.rig.rig import Rig

    home = tmp_path / "station"
    Rig(StationHome(home)).ensure_token()
    own = {"JUKI_DB": ""}  # a station of its own: no operator-admin of a shared registry
    juki(home, "hsm", "init", env=own)
    [token_file] = (home / "softhsm" / "tokens").glob("*/token.object")
    assert (token_file.parent / "token.object.juki-backup").stat().st_size > 0
    token_file.write_bytes(b"")
    status = juki(home, "hsm", "status", "--json", env=own)
    assert "restored from its copy" in status.stderr
    assert len(json.loads(status.stdout)["keys"]) == 17  # 11 station keys and our six CV keys
