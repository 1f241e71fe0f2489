"""操作履歴 end to end on an operator-mode station (pcscd + vpcd + SoftHSM): a logged-in
operator (PIV card) issues, suspends, resumes, changes a record code, reissues, revokes,
wipes, administers another operator and loads a recipient table; each command leaves
exactly its events, naming that operator, this station, the command's scope and the
reason given. `juki audit events` filters and proves them; an edited or deleted event
is caught by `juki audit verify`; no PIN of the session is in any event."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from tests.tamper import tampering
from tools.audit import log, merkle

from ..conftest import juki
from ..operator_helpers import (
    ADMIN_PIN,
    ADMIN_PUK,
    READER,
    admin_station,
    insert_operator_card,
    pin_file,
    station_registry,
)
from .test_audit import READER1, issue_in
from .test_commands import PIN

ADMIN_SCOPES = "operator-admin,issue,revoke,change-code,audit-read,verify"
CLERK_PIN, CLERK_PUK, CLERK_NEW_PIN = "424242", "86428642", "575757"
RESIDENT_PINS = (PIN, "2468", "SIGN2026")  # tests/cli/test_commands.pin_file


def events_since(home: Path, size: int) -> list[dict]:
    """The event entries appended at or after log index ``size``."""
    db = station_registry(home).connection()
    return [json.loads(raw) for (raw,) in db.execute(
        "SELECT entry FROM provision_log WHERE kind = 'event' AND idx >= ? ORDER BY idx",
        (size,))]


def log_size(home: Path) -> int:
    return log.size(station_registry(home).connection())


def reissue_request(rig_home: Path, root: Path, code: str) -> Path:
    """The yamada request under the resident's new record code, a blank card in slot 1."""
    new = root / "reissue"
    new.mkdir()
    request = json.loads((root / "yamada" / "request.json").read_text(encoding="utf-8"))
    (new / "request.json").write_text(json.dumps(request | {"resident_code": code},
                                                 ensure_ascii=False), encoding="utf-8")
    (new / "pins.txt").write_text((root / "yamada" / "pins.txt").read_text())
    (new / "pins.txt").chmod(0o600)
    juki(rig_home, "rig", "insert", "--slot", "1", "--state", str(new / "card.json"))
    return new


@pytest.fixture(scope="module")
def desk(rig_home: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A station in operator mode, the admin logged in; each step's events by name."""
    root = tmp_path_factory.mktemp("events")
    home = admin_station(rig_home, root, ADMIN_SCOPES, logged_in=True)
    station_id = json.loads(juki(home, "station", "status", "--json").stdout)["station"]
    steps: dict[str, tuple[str, list[dict]]] = {}

    def step(name: str, scope: str, *argv: str, **kwargs: object) -> str:
        before = log_size(home)
        out = juki(home, *argv, **kwargs).stdout  # type: ignore[arg-type]
        steps[name] = (scope, events_since(home, before))
        return out

    before = log_size(home)
    serial, code = issue_in(home, rig_home, root, 0, "yamada")
    steps["issue"] = ("issue", events_since(home, before))
    step("suspend", "revoke", "card", "suspend", serial, "--reason", "調査中")
    step("resume", "revoke", "card", "resume", serial, "--reason", "本人確認済")
    changed = json.loads(step("change-code", "change-code", "resident", "change-code", "--code",
                              code, "--reason", "漏えいのおそれ", "--reader", READER, "--json"))
    new = reissue_request(rig_home, root, changed["new_code"])
    reissued = json.loads(step("reissue", "issue", "card", "reissue", serial,
                               str(new / "request.json"), "--reader", READER1, "--pin-file",
                               str(new / "pins.txt"), "--json"))["card_serial"]
    step("revoke", "revoke", "card", "revoke", reissued, "--reason", "returned")
    step("wipe", "issue", "card", "wipe", "--reader", READER1)
    insert_operator_card(rig_home, root / "clerk.json")
    step("enroll", "operator-admin", "operator", "enroll", "--id", "clerk", "--name", "Clerk",
         "--municipality", "131016", "--scopes", "verify", "--reader", READER, "--pin-file",
         str(pin_file(root, CLERK_PIN, CLERK_PUK)))
    step("operator-suspend", "operator-admin", "operator", "suspend", "--id", "clerk",
         "--reason", "休職")
    step("operator-resume", "operator-admin", "operator", "resume", "--id", "clerk",
         "--reason", "復職")
    step("unlock", "operator-admin", "operator", "unlock", "--id", "clerk")
    unblock_pins = root / "unblock.txt"
    unblock_pins.write_text(f"operator_puk={CLERK_PUK}\noperator_pin={CLERK_NEW_PIN}\n")
    unblock_pins.chmod(0o600)
    step("unblock", "operator-admin", "operator", "unblock", "--id", "clerk", "--reader", READER,
         "--pin-file", str(unblock_pins))
    step("operator-revoke", "operator-admin", "operator", "revoke", "--id", "clerk",
         "--reason", "退職")
    table = root / "recipients.toml"
    table.write_text('[[recipient]]\nid = "TEST-AGENCY"\nname = "Test agency"\n'
                     '[[recipient.purposes]]\ncode = "T-1"\ndescription = "testing"\n',
                     encoding="utf-8")
    step("recipients", "audit-read", "audit", "recipients", "--load", str(table))
    step("hsm-init", "operator-admin", "hsm", "init")  # the shared token: nothing created
    return {"home": home, "station": station_id, "steps": steps, "serial": serial,
            "reissued": reissued, "table": table, "code": code, "new_code": changed["new_code"]}


def named(events: list[dict]) -> list[tuple]:
    """The card, resident, operator, table and key events (part C's certificate-* events
    of the same command are checked for operator, station and scope only)."""
    return [(e["event"], e["reason"], e["card_serial"], e["subject_operator"]) for e in events
            if not e["event"].startswith("certificate-")]


def test_each_operation_leaves_exactly_its_events(desk: dict) -> None:
    serial, reissued, steps = desk["serial"], desk["reissued"], desk["steps"]
    expected = {
        "issue": [("card-issuing", None, serial, None), ("card-active", None, serial, None)],
        "suspend": [("card-suspended", "調査中", serial, None)],
        "resume": [("card-active", "本人確認済", serial, None)],
        "change-code": [("record-code-changed", "漏えいのおそれ", None, None)],
        "reissue": [("card-issuing", f"reissue of {serial}", reissued, None),
                    ("card-active", None, reissued, None),
                    ("card-revoked", "superseded", serial, None)],
        "revoke": [("card-revoked", "returned", reissued, None)],
        "wipe": [("card-wiped", None, reissued, None)],
        "enroll": [("operator-enrolling", None, None, "clerk"),
                   ("operator-enrolled", None, None, "clerk")],
        "operator-suspend": [("operator-suspended", "休職", None, "clerk")],
        "operator-resume": [("operator-resumed", "復職", None, "clerk")],
        "unlock": [("operator-unlocked", None, None, "clerk")],
        "unblock": [("operator-unblocked", None, None, "clerk")],
        "operator-revoke": [("operator-revoked", "退職", None, "clerk")],
        "recipients": [("recipient-table-changed", "loaded recipients.toml", None, None)],
        "hsm-init": [],
    }
    for name, want in expected.items():
        scope, found = steps[name]
        got = named(found)
        if name == "enroll":  # the enrolment's reason names the card's GUID
            got = [(e, None, c, s) for e, _r, c, s in got]
        assert got == want, name
        for event in found:
            assert (event["operator"], event["station"], event["scope"]) == (
                "admin", desk["station"], scope), (name, event)
            assert dt.datetime.fromisoformat(event["time_local"]) == dt.datetime.fromisoformat(
                event["time_utc"])
    card_events = [e for _, found in steps.values() for e in found
                   if e["event"].startswith("card-")]
    assert all(e["resident_id"] is not None for e in card_events)
    assert steps["wipe"][1][0]["detail"] == {"from": "revoked"}


def test_no_pin_of_the_session_is_in_any_event(desk: dict) -> None:
    raw = [json.dumps(e, ensure_ascii=False) for e in events_since(desk["home"], 0)]
    assert len(raw) > 20
    for secret in (*RESIDENT_PINS, ADMIN_PIN, ADMIN_PUK, CLERK_PIN, CLERK_PUK, CLERK_NEW_PIN):
        assert not [r for r in raw if secret in r], secret
    # nor the record codes: 操作履歴 says that a code changed, never which
    assert not [r for r in raw if desk["code"] in r or desk["new_code"] in r]


def listed(home: Path, *argv: str, check: int = 0) -> dict:
    return json.loads(juki(home, "audit", "events", *argv, "--json", check=check).stdout)


def test_audit_events_filters_by_operator_card_since_and_name(desk: dict) -> None:
    home, serial = desk["home"], desk["serial"]
    everything = listed(home)["events"]
    stored = events_since(home, 0)
    assert [e["index"] for e in everything] == [e["index"] for e in stored]
    assert everything[0].keys() >= {"time_local", "station", "operator", "scope", "event",
                                    "reason", "card_serial", "subject_operator", "detail"}
    mine = listed(home, "--operator", "admin")["events"]
    assert [e["index"] for e in mine] == [e["index"] for e in stored if e["operator"] == "admin"]
    assert mine and len(mine) < len(stored)  # the open-mode enrolment had no operator
    assert listed(home, "--operator", "clerk")["events"] == []  # clerk never acted
    card = listed(home, "--card", serial)["events"]
    assert [e["event"] for e in card if not e["event"].startswith("certificate-")] == [
        "card-issuing", "card-active", "card-suspended", "card-active", "card-revoked"]
    assert [e["index"] for e in card] == [e["index"] for e in stored
                                          if e["card_serial"] == serial]
    assert [e["event"] for e in listed(home, "--card", serial, "--event",
                                       "card-active")["events"]] == ["card-active"] * 2
    middle = stored[len(stored) // 2]["time_utc"]
    since = listed(home, "--since", middle)["events"]
    assert [e["index"] for e in since] == [e["index"] for e in stored
                                           if e["time_utc"] >= middle]
    assert listed(home, "--since", "2999-01-01")["events"] == []
    assert listed(home, "--since", "2000-01-01")["events"] == everything
    bad = juki(home, "audit", "events", "--since", "last tuesday", check=2)
    assert "--since 'last tuesday' is not an ISO date" in bad.stderr
    text = juki(home, "audit", "events", "--card", serial).stdout
    assert text.count("\n") == len(card) and "card-suspended" in text and "reason 調査中" in text


def test_audit_events_proofs_verify_against_a_signed_checkpoint(desk: dict) -> None:
    home = desk["home"]
    out = listed(home, "--proof", "--operator", "admin")
    checkpoint = out["checkpoint"]
    assert checkpoint["signature_ok"]
    db = station_registry(home).connection()
    root = bytes.fromhex(checkpoint["root"])
    for event in out["events"]:
        entry = log.entry_at(db, event["index"])
        assert entry is not None and event["proof_verified"]
        proof = [bytes.fromhex(h) for h in event["inclusion_proof"]]
        assert merkle.verify_inclusion(event["index"], checkpoint["size"], entry.leaf, proof,
                                       root)
        assert not merkle.verify_inclusion(event["index"], checkpoint["size"],
                                           merkle.leaf_hash(b"forged"), proof, root)
    card = listed(home, "--card", desk["serial"])["events"]
    text = juki(home, "audit", "events", "--proof", "--card", desk["serial"]).stdout
    assert text.startswith("checkpoint: ") and "signature valid" in text.splitlines()[0]
    assert text.count("inclusion proof verified") == len(card) and "FAILED" not in text


def test_audit_verify_catches_an_edited_or_deleted_event(desk: dict) -> None:
    """Last in this module: it breaks the station's log."""
    home = desk["home"]
    assert json.loads(juki(home, "audit", "verify", "--json").stdout)["ok"]
    registry = station_registry(home)
    target = desk["steps"]["suspend"][1][0]["index"]
    original = log.entry_at(registry.connection(), target)
    assert original is not None
    with registry.transaction() as db, tampering(db):  # the attack: who suspended the card, rewritten
        db.execute("UPDATE provision_log SET entry = ? WHERE idx = ?",
                   (original.raw.replace('"operator":"admin"', '"operator":"clerk"'), target))
    verdict = json.loads(juki(home, "audit", "verify", "--json", check=1).stdout)
    assert verdict["first_bad_index"] == target and "MAC" in verdict["problem"]
    proofs = listed(home, "--proof", "--card", desk["serial"], check=1)["events"]
    assert [e["proof_verified"] for e in proofs if e["index"] == target] == [False]
    with registry.transaction() as db, tampering(db):
        db.execute("UPDATE provision_log SET entry = ? WHERE idx = ?", (original.raw, target))
    assert json.loads(juki(home, "audit", "verify", "--json").stdout)["ok"]
    last = log.size(registry.connection()) - 1
    with registry.transaction() as db, tampering(db):  # the attack: the last event deleted
        db.execute("DELETE FROM provision_log WHERE idx = ?", (last,))
    verdict = json.loads(juki(home, "audit", "verify", "--json", check=1).stdout)
    assert verdict["first_bad_index"] == last and "truncated" in verdict["problem"]
