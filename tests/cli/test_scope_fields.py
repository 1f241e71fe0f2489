"""Scopes by what is revealed (issue 11, defect 5), each leak performed as the review did,
through `juki` as typed, with an operator session holding only the named scope:

- `verify` only: `card list` / `card show` printed every record code and recorded nothing;
- `audit-read` only: `audit self` printed anyone's 4 information as the resident's request;
- `audit-read` only: `audit recipients --load` rewrote the recipient table;
- `verify` only: `card certs --with-sign` / `card sign` released the signature certificate
  (it carries the 4 information) and recorded nothing.

Sessions are minted directly for operators put in the registry directly (as in
tests/integration/test_scope_matrix.py): this tests authorisation, not login.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from cardlib.constants import Aid, JpkiFile
from tools.operators.session import start_session
from tools.station.home import StationHome

from ..conftest import juki
from ..operator_helpers import operator_station, station_registry
from .test_audit import READER0, READER1, issue_in

AUTH_PIN = "2468"  # jpki_auth of tests/cli/test_commands.pin_file


def log_rows(home: Path) -> list[dict]:
    db = station_registry(home).connection()
    return [json.loads(row[0]) for row in db.execute("SELECT entry FROM provision_log ORDER BY idx")]


def denials(home: Path) -> list:
    return station_registry(home).denials()


@pytest.fixture(scope="module")
def residents(rig_home: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A station with two residents' cards (A in slot 0, B in slot 1), in operator mode."""
    root = tmp_path_factory.mktemp("fields")
    home = operator_station(rig_home, root / "station")
    serial_a, code_a = issue_in(home, rig_home, root, 0, "a")
    serial_b, code_b = issue_in(home, rig_home, root, 1, "b")
    station = StationHome(home)
    settings = station.settings()
    settings["station"]["mode"] = "operator"
    station.write_settings(settings)
    return {"home": home, "root": root, "a": (serial_a, code_a), "b": (serial_b, code_b)}


def insert(rig_home: Path, residents: dict, slot: int, name: str) -> None:
    juki(rig_home, "rig", "insert", "--slot", str(slot), "--state",
         str(residents["root"] / name / "card.json"))


def session(residents: dict, station, *scopes: str) -> str:  # type: ignore[no-untyped-def]
    """A session on the residents' station for an operator holding exactly ``scopes``."""
    home = residents["home"]
    registry = station_registry(home)
    operator_id = "f-" + "-".join(sorted(scopes))
    if registry.operator(operator_id) is None:
        registry.begin_enrolment(operator_id, operator_id, "131016", frozenset(scopes), None,
                                 f"GUID-{operator_id}", None)
        registry.complete_enrolment(operator_id, b"not checked by the guard", None)
    operator = registry.operator(operator_id)
    assert operator is not None
    start_session(StationHome(home), station.hsm, registry, operator)
    return operator_id


def test_card_list_and_show_with_verify_only_redact_codes_and_record_nothing(
        residents: dict, station) -> None:  # type: ignore[no-untyped-def]
    home, (serial_a, code_a) = residents["home"], residents["a"]
    session(residents, station, "verify")
    before = len(log_rows(home))
    listed = juki(home, "card", "list", "--json")
    rows = json.loads(listed.stdout)
    assert rows and all(r["resident_code"] is None and r["redacted"] == ["resident_code"]
                        for r in rows)
    assert code_a not in listed.stdout
    assert code_a not in juki(home, "card", "list").stdout
    shown = juki(home, "card", "show", serial_a, "--json")
    assert code_a not in shown.stdout and json.loads(shown.stdout)["record_codes"] is None
    assert len(log_rows(home)) == before  # nothing shown, nothing recorded

    operator = session(residents, station, "verify", "read-code")
    rows = json.loads(juki(home, "card", "list", "--json").stdout)
    assert code_a in {r["resident_code"] for r in rows}
    entries = log_rows(home)[before:]
    assert {e["card_serial"] for e in entries} == {r["serial"] for r in rows if r["resident_code"]}
    assert all((e["recipient"], e["purpose"], e["fields"], e["operator"], e["kind"]) ==
               ("STATION", "REGISTRY-ADMIN", ["record_code"], operator, "provision")
               for e in entries)
    shown = json.loads(juki(home, "card", "show", serial_a, "--json").stdout)
    assert code_a in {c["code"] for c in shown["record_codes"]}
    last = log_rows(home)[-1]
    assert (last["card_serial"], last["record_code"], last["fields"]) == (
        serial_a, code_a, ["code_history", "record_code"])


def test_signature_certificate_needs_read_identity_and_is_recorded(
        rig_home: Path, residents: dict, station, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    home, (serial_a, code_a) = residents["home"], residents["a"]
    insert(rig_home, residents, 0, "a")
    pins = residents["root"] / "a" / "pins.txt"
    document = tmp_path / "doc.txt"
    document.write_text("contract")
    operator = session(residents, station, "verify")
    before_log, before_denials = len(log_rows(home)), len(denials(home))
    certs_dir = tmp_path / "certs"
    refused = juki(home, "card", "certs", "--with-sign", "--reader", READER0, "--pin-file",
                   str(pins), "--out", str(certs_dir), "--json", check=7)
    assert "read-identity" in refused.stderr and '"subject"' not in refused.stdout
    assert not certs_dir.exists()
    refused = juki(home, "card", "sign", str(document), "--reader", READER0, "--pin-file",
                   str(pins), check=7)
    assert "read-identity" in refused.stderr
    assert not document.with_name("doc.txt.p7s").exists()
    found = denials(home)[before_denials:]
    assert [(d.command, d.scope, d.operator_id) for d in found] == [
        ("card certs", "read-identity", operator), ("card sign", "read-identity", operator)]
    # the auth key's certificate carries no 4 information: verify is enough, nothing recorded
    juki(home, "card", "sign", str(document), "--key", "auth", "--reader", READER0,
         "--pin-file", str(pins))
    assert len(log_rows(home)) == before_log

    session(residents, station, "verify", "read-identity")
    certs = json.loads(juki(home, "card", "certs", "--with-sign", "--reader", READER0,
                            "--pin-file", str(pins), "--json").stdout)
    assert "sign" in {c["name"] for c in certs}
    juki(home, "card", "sign", str(document), "--reader", READER0, "--pin-file", str(pins))
    entries = log_rows(home)[before_log:]
    assert [(e["recipient"], e["purpose"], e["fields"], e["card_serial"], e["record_code"])
            for e in entries] == 2 * [("STATION", "HOLDER-SERVICE", ["signature_certificate"],
                                       serial_a, code_a)]


def test_recipient_table_change_needs_operator_admin_and_is_recorded(
        residents: dict, station, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    home = residents["home"]
    table = tmp_path / "recipients.toml"
    table.write_text('[[recipient]]\nid = "ROGUE"\nname = "Rogue agency"\n'
                     '[[recipient.purposes]]\ncode = "ALL"\ndescription = "everything"\n',
                     encoding="utf-8")
    operator = session(residents, station, "audit-read")
    juki(home, "audit", "recipients")  # the configured table, loaded at first use if not yet
    before_log, before_denials = len(log_rows(home)), len(denials(home))
    refused = juki(home, "audit", "recipients", "--load", str(table), check=7)
    assert "operator-admin" in refused.stderr
    assert "ROGUE" not in juki(home, "audit", "recipients").stdout
    assert len(log_rows(home)) == before_log
    last = denials(home)[-1]
    assert len(denials(home)) == before_denials + 1
    assert (last.command, last.scope, last.operator_id) == ("audit recipients", "operator-admin",
                                                            operator)

    admin = session(residents, station, "audit-read", "operator-admin")
    assert "ROGUE" in juki(home, "audit", "recipients", "--load", str(table)).stdout
    entry = log_rows(home)[-1]  # 操作履歴: committed with the table change
    assert (entry["kind"], entry["event"], entry["operator"], entry["scope"]) == (
        "event", "recipient-table-changed", admin, "audit-read")
    assert entry["detail"] == {"file": "recipients.toml", "added": "ROGUE/ALL",
                               "sha256": hashlib.sha256(table.read_bytes()).hexdigest()}


def forge_jpki_auth_key(state: Path, destination: Path) -> None:
    """A clone of the card at ``state`` whose JPKI auth key is not the certified one."""
    raw = json.loads(state.read_text(encoding="utf-8"))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raw["apps"][Aid.JPKI.hex()]["keys"][f"{JpkiFile.AUTH_KEY:04X}"] = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode("ascii")
    destination.write_text(json.dumps(raw), encoding="utf-8")
    destination.chmod(0o600)


def test_audit_self_only_for_the_resident_in_person(
        rig_home: Path, residents: dict, station, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    home, (serial_a, code_a), (serial_b, _) = residents["home"], residents["a"], residents["b"]
    insert(rig_home, residents, 0, "a")
    insert(rig_home, residents, 1, "b")
    operator = session(residents, station, "audit-read")
    before_log, before_denials = len(log_rows(home)), len(denials(home))
    # someone else's card (B's, with B's own PIN) for A's record code
    other = juki(home, "audit", "self", "--code", code_a, "--reader", READER1, "--json",
                 input=f"{AUTH_PIN}\n", check=7)
    assert serial_b in other.stderr and "鈴木" not in other.stdout
    # A's own card with a wrong PIN
    juki(home, "audit", "self", "--code", code_a, "--reader", READER0, input="0000\n", check=3)
    # a counterfeit of A's card: same certificates, another key
    forged = tmp_path / "forged.json"
    forge_jpki_auth_key(residents["root"] / "a" / "card.json", forged)
    juki(rig_home, "rig", "insert", "--slot", "1", "--state", str(forged))
    fake = juki(home, "audit", "self", "--code", code_a, "--reader", READER1,
                input=f"{AUTH_PIN}\n", check=7)
    assert "does not verify" in fake.stderr
    assert len(log_rows(home)) == before_log  # nothing disclosed, nothing recorded as SELF
    found = denials(home)[before_denials:]
    assert [(d.command, d.operator_id) for d in found] == 3 * [("audit self", operator)]

    own = json.loads(juki(home, "audit", "self", "--code", code_a, "--reader", READER0,
                          "--json", input=f"{AUTH_PIN}\n").stdout)
    assert own["identity"]["name"] and own["record_code"] is None  # codes need read-code
    assert own["requester"]["kind"] == "resident" and own["requester"]["card_serial"] == serial_a
    entry = log_rows(home)[-1]
    assert (entry["kind"], entry["recipient"], entry["card_serial"], entry["requester"]["kind"]) \
        == ("disclosure", "SELF", serial_a, "resident")
    assert "record_code" not in entry["fields"]


def test_audit_self_by_a_legal_representative(residents: dict, station,  # type: ignore[no-untyped-def]
                                               tmp_path: Path) -> None:
    home, (_, code_a) = residents["home"], residents["a"]
    who = ("--representative", "山田 花子", "--basis", "家庭裁判所の後見開始審判書 令和8年(家)第123号")
    session(residents, station, "audit-read")
    before_log = len(log_rows(home))
    refused = juki(home, "audit", "self", "--code", code_a, *who, check=7)
    assert "read-identity" in refused.stderr and denials(home)[-1].scope == "read-identity"
    assert len(log_rows(home)) == before_log

    session(residents, station, "audit-read", "read-identity", "read-code")
    own = json.loads(juki(home, "audit", "self", "--code", code_a, *who, "--json").stdout)
    assert own["identity"]["name"] and own["record_code"] == code_a
    assert own["requester"] == {"kind": "representative", "name": "山田 花子", "basis": who[3]}
    assert log_rows(home)[-1]["recipient"] == "REPRESENTATIVE"

    report = json.loads(juki(home, "audit", "disclose", "--code", code_a, "--json").stdout)
    shown = [e for e in report["entries"] if e["recipient"] == "REPRESENTATIVE"]
    assert shown and shown[-1]["requester"]["name"] == "山田 花子"
    assert report["record_codes"] == [code_a]
    text = juki(home, "audit", "disclose", "--code", code_a).stdout
    assert "requested by legal representative 山田 花子" in text
    page = tmp_path / "report.html"
    juki(home, "audit", "disclose", "--code", code_a, "--format", "html", "--out", str(page))
    assert "法定代理人 山田 花子（根拠: 家庭裁判所の後見開始審判書" in page.read_text(encoding="utf-8")

    session(residents, station, "audit-read")  # without read-code: no code in the report
    redacted = json.loads(juki(home, "audit", "disclose", "--code", code_a, "--json").stdout)
    assert redacted["record_codes"] == [] and all(e["record_code"] is None
                                                  for e in redacted["entries"])
