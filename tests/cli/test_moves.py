"""Moving with the card end to end through pcscd, vpcd and SoftHSM (SQLite, and
PostgreSQL in the JUKI_DB pass): move-out at one municipality, move-in with the card at
another, the new address read back, the old signature certificate revoked, and every
refusal of the rules (nothing written, the card untouched)."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from tools.registry import Registry
from tools.rig.rig import reader_name
from tools.station.home import StationHome

from ..conftest import ROOT, direct_registry_target, juki
from .rig_cards import issue_own_yamada_card

PIN = "5931"
TODAY = dt.date.today()
SAPPORO = ("--address", "北海道札幌市中央区北1条西2丁目", "--municipality", "011002")
NENKIN = ("--recipient", "NENKIN", "--purpose", "B1-57")


def registry(home: Path) -> Registry:
    return Registry(direct_registry_target(home))  # as its owner in the TLS pass


def issue_card(home: Path, tmp_path: Path) -> tuple[str, str]:
    card = issue_own_yamada_card(home, tmp_path, tmp_path / "card.json", PIN)
    reg = registry(home)
    try:
        code = reg.get(card["serial"]).resident_code
    finally:
        reg.close()
    return card["serial"], code


def move_out(home: Path, code: str, to: str = "011002", date: dt.date = TODAY,
             check: int = 0) -> subprocess.CompletedProcess[str]:
    return juki(home, "resident", "move-out", "--code", code, "--to", to, "--date",
                date.isoformat(), "--reason", "転勤", "--json", check=check)


def move_in(home: Path, *extra: str, check: int = 0, pin: str = PIN,
            date: dt.date = TODAY) -> subprocess.CompletedProcess[str]:
    return juki(home, "resident", "move-in", *SAPPORO, "--date", date.isoformat(), *extra,
                "--reader", reader_name(0), "--json", input=f"{pin}\n", check=check)


def state(home: Path, serial: str) -> tuple[str | None, str | None, object]:
    reg = registry(home)
    try:
        card = reg.get(serial)
        return (card.municipality_code, reg.identity_of(card.resident_id)["address"],
                reg.open_operation_of(serial))
    finally:
        reg.close()


def test_the_moving_story(rig_home: Path, tmp_path: Path) -> None:
    serial, code = issue_card(rig_home, tmp_path)
    reg = registry(rig_home)
    old_sign = reg.current_certificate(serial, "jpki-sign").serial_number
    reg.close()
    planned = json.loads(move_out(rig_home, code).stdout)
    assert (planned["status"], planned["from_municipality"], planned["card_serial"]) == (
        "planned", "131016", serial)
    changed = json.loads(move_in(rig_home).stdout)
    assert changed["municipality"] == {"from": "131016", "to": "011002"}
    assert changed["revoked_certificates"] == [old_sign] and changed["signature_certificate"]
    read = json.loads(juki(rig_home, "card", "read", "--with", "pin", *NENKIN, "--reader",
                           reader_name(0), "--json", input=f"{PIN}\n").stdout)
    assert read["address"] == SAPPORO[1]
    verdict = json.loads(juki(rig_home, "verify", "--reader", reader_name(0), "--json",
                              input=f"{PIN}\n").stdout)
    assert verdict["genuine"] and verdict["card_serial"] == serial
    juki(rig_home, "card", "check", "--with", "pin", "--reader", reader_name(0),
         input=f"{PIN}\n")
    reg = registry(rig_home)
    try:
        old = reg.certificate(old_sign)
        assert (old.status, old.reason) == ("revoked", "four-info-changed")
        assert reg.get(serial).municipality_code == "011002"
        events = [json.loads(e) for (e,) in reg.connection().execute(
            "SELECT entry FROM provision_log WHERE kind = 'event' ORDER BY idx")]
        mine = [e for e in events if e.get("card_serial") == serial]
        names = [e.get("event") for e in mine]
        assert {"move-out", "move-in", "certificate-issued", "certificate-revoked"} <= set(names)
        move_in_event = next(e for e in mine if e.get("event") == "move-in")
        assert SAPPORO[1] not in json.dumps(move_in_event, ensure_ascii=False)
    finally:
        reg.close()
    moves = json.loads(juki(rig_home, "resident", "moves", "--code", code, "--json").stdout)
    assert [m["status"] for m in moves] == ["completed"]
    second = move_in(rig_home, check=2)  # nothing planned any more
    assert "no planned move-out" in second.stderr


def test_refusals_write_nothing(rig_home: Path, tmp_path: Path) -> None:
    serial, code = issue_card(rig_home, tmp_path)
    before = state(rig_home, serial)
    assert "no planned move-out" in move_in(rig_home, check=2).stderr
    move_out(rig_home, code)
    assert "already has an open move" in move_out(rig_home, code, "012025", check=2).stderr
    wrong_place = juki(rig_home, "resident", "move-in", "--address", "x", "--municipality",
                       "012025", "--date", TODAY.isoformat(), "--reader", reader_name(0),
                       input=f"{PIN}\n", check=2)
    assert "goes to 011002, not 012025" in wrong_place.stderr
    late = move_in(rig_home, check=2, date=TODAY - dt.timedelta(days=15))
    assert "move_in_notice_days" in late.stderr
    wrong_pin = move_in(rig_home, check=3, pin="0000")
    assert "2" in wrong_pin.stderr  # tries left, spent by that VERIFY only
    status = json.loads(juki(rig_home, "card", "pin", "status", "--reader", reader_name(0),
                             "--json").stdout)
    assert json.dumps(status).count('"tries_left": 2') == 1, status
    assert state(rig_home, serial) == before
    # a counterfeit of this card: refused before any write
    fake = tmp_path / "fake.json"
    juki(rig_home, "emulator", "counterfeit", "--from", str(tmp_path / "card.json"), "--to",
         str(fake))
    juki(rig_home, "rig", "insert", "--slot", "0", "--state", str(fake))
    assert move_in(rig_home, check=1).returncode == 1
    assert state(rig_home, serial) == before
    juki(rig_home, "rig", "insert", "--slot", "0", "--state", str(tmp_path / "card.json"))
    # 31 days after the planned date: refused, the move expired
    reg = registry(rig_home)
    try:
        resident = reg.get(serial).resident_id
        reg.cancel_move(reg.open_move_of(resident).id, "test")
    finally:
        reg.close()
    move_out(rig_home, code, date=TODAY - dt.timedelta(days=31))
    grace = move_in(rig_home, check=2)
    assert "move_out_grace_days" in grace.stderr
    moves = json.loads(juki(rig_home, "resident", "moves", "--code", code, "--json").stdout)
    assert [m["status"] for m in moves] == ["cancelled", "expired"]
    assert state(rig_home, serial) == before


def test_card_later_lapses_after_90_days(rig_home: Path, tmp_path: Path) -> None:
    serial, code = issue_card(rig_home, tmp_path)
    move_out(rig_home, code)
    notified = json.loads(juki(rig_home, "resident", "move-in", *SAPPORO, "--date",
                               TODAY.isoformat(), "--card-later", "--code", code,
                               "--json").stdout)
    assert notified["status"] == "moved-in"
    assert notified["continued_use_deadline"] == (TODAY + dt.timedelta(days=90)).isoformat()
    reg = registry(rig_home)
    try:
        assert reg.current_certificate(serial, "jpki-sign") is None  # revoked at once
        assert reg.lapse_due(TODAY + dt.timedelta(days=90)) == []
        assert reg.lapse_due(TODAY + dt.timedelta(days=91)) == [notified["id"]]
    finally:
        reg.close()
    verdict = json.loads(juki(rig_home, "verify", "--reader", reader_name(0), "--json",
                              input=f"{PIN}\n", check=1).stdout)
    status = next(c for c in verdict["checks"] if c["name"] == "registry_status")
    assert not status["ok"] and "expired (lapsed: continued use not registered within 90" \
        in status["detail"]
    refused = juki(rig_home, "resident", "continue-card", "--reader", reader_name(0),
                   input=f"{PIN}\n", check=2)
    assert "is expired (lapsed" in refused.stderr


def open_moves(home: Path, code: str) -> list[dict[str, object]]:
    moves = json.loads(juki(home, "resident", "moves", "--code", code, "--json").stdout)
    return [m for m in moves if m["status"] in ("planned", "moved-in")]


def test_sigkill_during_move_in(rig_home: Path, tmp_path: Path) -> None:
    rng = random.Random(1313)
    serial, code = issue_card(rig_home, tmp_path)
    places = {"131016": "東京都千代田区霞が関二丁目1番2号", "011002": SAPPORO[1]}
    recovered = 0
    for run in range(6):
        here = state(rig_home, serial)[0]
        there = next(m for m in places if m != here)
        if not open_moves(rig_home, code):
            move_out(rig_home, code, to=there)
        command = [sys.executable, "-m", "tools", "--home", str(rig_home), "resident", "move-in",
                   "--address", places[there], "--municipality", there, "--date",
                   TODAY.isoformat(), "--reader", reader_name(0)]
        process = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   env={**os.environ, "JUKI_DB": str(
                                       StationHome(rig_home).registry_target())})
        assert process.stdin is not None
        process.stdin.write(f"{PIN}\n".encode())
        process.stdin.close()
        if run % 2 == 0:  # anywhere, start-up included
            time.sleep(rng.uniform(0.05, 3.0))
        else:  # inside the operation: once its journal entry exists
            deadline = time.monotonic() + 30
            while state(rig_home, serial)[2] is None and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(rng.uniform(0, 0.04))
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        listing = json.loads(juki(rig_home, "issue", "recover", "--json").stdout)
        for operation in listing["operations"]:
            assert operation["status"] == "interrupted" and "identity" not in operation["payload"]
            verified = juki(rig_home, "verify", "--reader", reader_name(0), "--json",
                            input=f"{PIN}\n", check=None)
            seen = json.loads(verified.stdout)
            assert verified.returncode == 1  # the card does not pass until recovered
            assert seen["open_operation"]["id"] == operation["id"]
            assert "run juki issue recover" in seen["open_operation"]["note"]
            juki(rig_home, "issue", "recover", "--operation", str(operation["id"]),
                 "--reader", reader_name(0), input=f"{PIN}\n")
            recovered += 1
        municipality, address, open_operation = state(rig_home, serial)
        assert open_operation is None and address == places[municipality]
        verdict = json.loads(juki(rig_home, "verify", "--reader", reader_name(0), "--json",
                                  input=f"{PIN}\n").stdout)
        assert verdict["genuine"], verdict
        read = json.loads(juki(rig_home, "card", "read", "--with", "pin", *NENKIN, "--reader",
                               reader_name(0), "--json", input=f"{PIN}\n").stdout)
        assert read["address"] == address
    assert recovered >= 2  # the odd runs kill inside the operation
