"""Operator cards, login, sessions, scopes and lock-outs through the `juki` CLI, on the
rig's readers (pcscd + vpcd + emulated PIV cards) and the SoftHSM token."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path

import pytest
from cryptography import x509

from ..conftest import juki
from ..operator_helpers import (
    ADMIN_PIN,
    ADMIN_PUK,
    READER,
    admin_station,
    enroll,
    insert_operator_card,
    login,
    operator_mode,
    operator_station,
    pin_file,
    station_registry,
)
from .test_commands import READ_FOR


def session_path(home: Path) -> Path:
    """Where the station keeps this uid's operator session."""
    return home / "sessions" / f"uid-{os.getuid()}.json"


@pytest.fixture
def op_home(rig_home: Path, tmp_path: Path) -> Path:
    """An operator-mode station with an enrolled admin (card ``admin.json``) logged out."""
    return admin_station(rig_home, tmp_path)


def admin_login(home: Path, rig_home: Path, tmp_path: Path) -> None:
    login(home, rig_home, tmp_path / "admin.json")


@pytest.mark.parametrize("algorithm", ["p256", "rsa2048"])
def test_enrol_login_whoami_logout(rig_home: Path, tmp_path: Path, algorithm: str) -> None:
    home = operator_station(rig_home, tmp_path / "station")
    card = tmp_path / "op.json"
    enrolled = enroll(home, rig_home, card, "op-1", "issue,verify", algorithm=algorithm)
    assert enrolled["algorithm"] == algorithm
    registry = station_registry(home)
    record = registry.operator("op-1")
    assert record is not None and record.status == "active"
    assert record.card_guid == enrolled["card_guid"]
    cert = x509.load_der_x509_certificate(record.certificate or b"")
    ca_pem = json.loads(juki(home, "hsm", "status", "--json").stdout)
    assert cert.issuer.rfc4514_string().startswith("CN=Juki Operator CA")
    assert any(k["role"] == "operator-ca" for k in ca_pem["keys"])
    operator_mode(home)
    session = json.loads(login(home, rig_home, card).stdout)
    assert session["operator_id"] == "op-1" and session["scopes"] == ["issue", "verify"]
    who = json.loads(juki(home, "whoami", "--json").stdout)
    assert who["operator_id"] == "op-1"
    assert session_path(home).stat().st_mode & 0o077 == 0
    events = [e["event"] for e in registry.operator_events("op-1")]
    assert events[-1] == "login"
    juki(home, "logout")
    assert "no operator is logged in" in juki(home, "whoami", check=7).stderr


def test_enrolment_refuses_bad_input_before_touching_the_card(rig_home: Path,
                                                              tmp_path: Path) -> None:
    home = operator_station(rig_home, tmp_path / "station")
    card = tmp_path / "op.json"
    insert_operator_card(rig_home, card)
    before = card.read_text()
    pins = pin_file(tmp_path, ADMIN_PIN, ADMIN_PUK)
    for args, field in ((["--scopes", "issue,root"], "unknown scope"),
                        (["--municipality", "131017"], "municipality"),
                        (["--id", "bad id!"], "'id'")):
        base = {"--id": "op-x", "--scopes": "issue", "--municipality": "131016"}
        base.update(dict(zip(args[::2], args[1::2], strict=True)))
        flat = [x for kv in base.items() for x in kv]
        result = juki(home, "operator", "enroll", "--name", "X", *flat, "--reader", READER,
                      "--pin-file", str(pins), check=2)
        assert field in result.stderr
    assert card.read_text() == before
    assert station_registry(home).operators() == []


def test_operator_mode_needs_an_active_admin_first(rig_home: Path, tmp_path: Path) -> None:
    home = operator_station(rig_home, tmp_path / "station")
    enroll(home, rig_home, tmp_path / "op.json", "op-0", "verify")
    result = juki(home, "station", "mode", "operator", check=7)
    assert "operator-admin" in result.stderr
    assert json.loads(juki(home, "station", "status", "--json").stdout)["mode"] == "open"


def test_scope_denial_is_recorded(op_home: Path, rig_home: Path, tmp_path: Path) -> None:
    admin_login(op_home, rig_home, tmp_path)
    result = juki(op_home, "card", "code", *READ_FOR, "--reader", READER, check=7)
    assert "lacks the scope 'read-code'" in result.stderr
    denials = json.loads(juki(op_home, "operator", "denials", "--json").stdout)
    assert denials[-1]["operator_id"] == "admin" and denials[-1]["command"] == "card code"
    assert denials[-1]["scope"] == "read-code"


def test_no_session_denies_and_records(op_home: Path) -> None:
    result = juki(op_home, "card", "list", check=7)
    assert "no operator is logged in" in result.stderr
    denial = station_registry(op_home).denials()[-1]
    assert denial.operator_id is None and denial.command == "card list"


def test_card_pin_blocks_after_three_and_admin_unblocks_with_puk(
        op_home: Path, rig_home: Path, tmp_path: Path) -> None:
    settings = json.loads(juki(op_home, "station", "status", "--json").stdout)
    assert settings["mode"] == "operator"
    admin_login(op_home, rig_home, tmp_path)
    card = tmp_path / "op.json"
    enroll(op_home, rig_home, card, "op-2", "verify", pin="112233", puk="99887766")
    for left in (2, 1):
        result = login(op_home, rig_home, card, pin="000000", check=7)
        assert f"wrong PIN ({left} tries left" in result.stderr
    result = login(op_home, rig_home, card, pin="000000", check=7)
    assert "blocked" in result.stderr
    assert "blocked" in login(op_home, rig_home, card, pin="112233", check=7).stderr
    admin_login(op_home, rig_home, tmp_path)
    insert_operator_card(rig_home, card)
    juki(op_home, "operator", "unblock", "--id", "op-2", "--reader", READER,
         input="99887766\n445566\n")
    login(op_home, rig_home, card, pin="445566")


def test_application_lockout_and_admin_unlock(rig_home: Path, tmp_path: Path) -> None:
    home = operator_station(rig_home, tmp_path / "station", max_failed_logins=2,
                            failed_login_window_minutes=10)
    enroll(home, rig_home, tmp_path / "admin.json", "admin", "operator-admin")
    card = tmp_path / "op.json"
    enroll(home, rig_home, card, "op-3", "verify", pin="121212")
    operator_mode(home)
    login(home, rig_home, card, pin="000000", check=7)
    result = login(home, rig_home, card, pin="000000", check=7)
    assert "locked out" in result.stderr
    result = login(home, rig_home, card, pin="121212", check=7)
    assert "locked out since" in result.stderr
    registry = station_registry(home)
    record = registry.operator("op-3")
    assert record is not None and record.locked_at is not None
    admin_login(home, rig_home, tmp_path)
    juki(home, "operator", "unlock", "--id", "op-3")
    # the lock-out refused before VERIFY: the card still had one try left, now restored
    login(home, rig_home, card, pin="121212")


def test_suspended_or_revoked_operator_never_logs_in_and_session_ends(
        op_home: Path, rig_home: Path, tmp_path: Path) -> None:
    admin_login(op_home, rig_home, tmp_path)
    card = tmp_path / "op.json"
    enroll(op_home, rig_home, card, "op-4", "verify", pin="343434")
    login(op_home, rig_home, card, pin="343434")
    registry = station_registry(op_home)
    registry.set_operator_status("op-4", "suspended", "on leave", "admin")
    assert "op-4 is suspended: session ended" in juki(op_home, "card", "list", check=7).stderr
    assert "op-4 is suspended" in login(op_home, rig_home, card, pin="343434", check=7).stderr
    registry.set_operator_status("op-4", "active", None, "admin")
    login(op_home, rig_home, card, pin="343434")
    juki(op_home, "card", "list")
    registry.set_operator_status("op-4", "revoked", "left", "admin")
    assert "op-4 is revoked" in login(op_home, rig_home, card, pin="343434", check=7).stderr


def test_session_expires_and_tampering_is_detected(rig_home: Path, tmp_path: Path) -> None:
    home = operator_station(rig_home, tmp_path / "station", session_minutes=0.1)
    card = tmp_path / "op.json"
    enroll(home, rig_home, card, "op-5", "verify")
    operator_mode(home)
    expires = dt.datetime.fromisoformat(json.loads(login(home, rig_home, card).stdout)["expires_at"])
    juki(home, "card", "list")
    session_file = session_path(home)
    original = session_file.read_text()
    forged = json.loads(original) | {"scopes": ["operator-admin", "verify"]}
    session_file.write_text(json.dumps(forged))
    assert "MAC does not verify" in juki(home, "whoami", check=7).stderr
    session_file.write_text(original)
    juki(home, "whoami")
    time.sleep(max(0.0, (expires - dt.datetime.now(dt.UTC)).total_seconds()) + 0.2)
    assert "expired" in juki(home, "card", "list", check=7).stderr


def test_session_of_another_station_is_refused(rig_home: Path, tmp_path: Path) -> None:
    home = operator_station(rig_home, tmp_path / "station")
    other = operator_station(rig_home, tmp_path / "other")
    card = tmp_path / "op.json"
    enroll(home, rig_home, card, "op-6", "verify")
    operator_mode(home)
    login(home, rig_home, card)
    session_path(other).parent.mkdir(mode=0o700, exist_ok=True)
    session_path(other).write_text(session_path(home).read_text())
    operator_mode(other)
    result = juki(other, "whoami", check=7)
    assert "the session belongs to station" in result.stderr


def test_card_of_another_operator_or_unenrolled_card_cannot_log_in(
        rig_home: Path, tmp_path: Path) -> None:
    home = operator_station(rig_home, tmp_path / "station")
    blank = tmp_path / "blank.json"
    insert_operator_card(rig_home, blank)
    result = juki(home, "login", "--reader", READER, input=ADMIN_PIN + "\n", check=7)
    assert "no PIV Authentication certificate" in result.stderr
    # a card enrolled at another station (same token, other registry) is unknown here
    other = operator_station(rig_home, tmp_path / "other")
    enroll(other, rig_home, tmp_path / "foreign.json", "op-7", "verify")
    result = login(home, rig_home, tmp_path / "foreign.json", check=7)
    assert "op-7 is not registered" in result.stderr


def test_session_file_copied_back_after_logout_or_a_newer_login_is_refused(
        rig_home: Path, tmp_path: Path) -> None:
    home = operator_station(rig_home, tmp_path / "station")
    first, second = tmp_path / "op-a.json", tmp_path / "op-b.json"
    enroll(home, rig_home, first, "op-a", "verify,read-code")
    enroll(home, rig_home, second, "op-b", "verify")
    operator_mode(home)
    login(home, rig_home, first)
    kept = (session_path(home)).read_text()
    juki(home, "logout")
    (session_path(home)).write_text(kept)
    assert "the session was ended" in juki(home, "whoami", check=7).stderr
    login(home, rig_home, first)
    kept = (session_path(home)).read_text()
    login(home, rig_home, second)
    (session_path(home)).write_text(kept)  # op-a's wider session back over op-b's
    assert "the session was ended" in juki(home, "card", "list", check=7).stderr
