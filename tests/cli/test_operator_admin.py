"""Operator administration as typed by an operator-admin, and the secrecy of PINs in
traces, through the real CLI on the rig."""

from __future__ import annotations

import json
from pathlib import Path

from ..conftest import juki
from ..operator_helpers import (
    ADMIN_PIN,
    ADMIN_PUK,
    READER,
    enroll,
    insert_operator_card,
    login,
    operator_mode,
    operator_station,
)


def test_admin_suspends_resumes_revokes_and_lists(rig_home: Path, tmp_path: Path) -> None:
    home = operator_station(rig_home, tmp_path / "station")
    enroll(home, rig_home, tmp_path / "admin.json", "admin", "operator-admin")
    clerk_card = tmp_path / "clerk.json"
    enroll(home, rig_home, clerk_card, "clerk", "verify", pin="565656")
    operator_mode(home)
    login(home, rig_home, tmp_path / "admin.json")
    listed = json.loads(juki(home, "operator", "list", "--json").stdout)
    assert [(o["operator_id"], o["status"], o["scopes"]) for o in listed] == [
        ("admin", "active", ["operator-admin"]), ("clerk", "active", ["verify"])]
    juki(home, "operator", "suspend", "--id", "clerk", "--reason", "investigation")
    assert "cannot become suspended" in juki(home, "operator", "suspend", "--id", "clerk",
                                             check=2).stderr
    juki(home, "operator", "resume", "--id", "clerk")
    juki(home, "operator", "revoke", "--id", "clerk", "--reason", "left the office")
    shown = json.loads(juki(home, "operator", "show", "--id", "clerk", "--json").stdout)
    assert shown["status"] == "revoked" and shown["status_reason"] == "left the office"
    assert [e["event"] for e in shown["events"]] == [
        "enrolling", "enrolled", "suspended", "active", "revoked"]
    assert {e["actor"] for e in shown["events"][2:]} == {"admin"}
    assert "clerk is revoked" in login(home, rig_home, clerk_card, pin="565656", check=7).stderr
    insert_operator_card(rig_home, tmp_path / "new.json")
    again = juki(home, "operator", "enroll", "--id", "clerk", "--name", "C", "--municipality",
                 "131016", "--scopes", "verify", "--reader", READER,
                 input="565656\n12121212\n", check=2)
    assert "never reused" in again.stderr


def test_pins_never_reach_the_trace(rig_home: Path, tmp_path: Path) -> None:
    home = operator_station(rig_home, tmp_path / "station")
    card = tmp_path / "op.json"
    insert_operator_card(rig_home, card)
    pins = f"{ADMIN_PIN}\n{ADMIN_PUK}\n"
    enrolled = juki(home, "-vvv", "operator", "enroll", "--id", "trace", "--name", "T",
                    "--municipality", "131016", "--scopes", "verify", "--reader", READER,
                    input=pins)
    logged = juki(home, "-vvv", "login", "--reader", READER, input=ADMIN_PIN + "\n")
    trace = enrolled.stderr + logged.stderr + enrolled.stdout + logged.stdout
    assert "00 20 00 80 [8] <8 bytes redacted>" in trace  # VERIFY was traced, redacted
    assert "00 2C 00 80 [16] <16 bytes redacted>" in trace  # RESET RETRY COUNTER
    words = [line for line in trace.splitlines() if ">>" not in line and "<<" not in line]
    for secret in (ADMIN_PIN, ADMIN_PUK, "123456", "12345678"):
        assert all(secret not in line for line in words)  # messages and output
        assert secret.encode().hex() not in trace.lower()  # APDU data, hex
