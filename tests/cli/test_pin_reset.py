"""`juki card pin reset` end to end (pcscd, vpcd, SoftHSM, the registry of the run):
each of the five resident PINs blocked, reset at the counter with 照合番号B, the new value
verifies and the old one does not, no other PIN's counter moves; the sign PIN's format is
refused on the host; a sign-PIN reset revokes nothing; the value leaks nowhere; an
operator without `pin-reset` is denied; a counterfeit is refused before any reset APDU."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cryptography import x509

from cardlib.apps.base import ApplicationSession
from cardlib.errors import InvalidPinError, PinBlockedError
from tools.counter.card_session import PIN_TARGETS
from tools.operators.session import start_session
from tools.station.home import StationHome
from tools.station.readers import open_card

from ..conftest import juki
from ..operator_helpers import station_registry
from .rig_cards import dead_owner, station_with_yamada_card
from .test_audit import READER0

CARD_PIN = "4826"
ISSUED = {"card-info": CARD_PIN, "jpki-auth": "2468", "jpki-sign": "SIGN2026",
          "juki": CARD_PIN, "common": CARD_PIN}  # 共通AP/住基AP 001C = the card-info PIN
MAX_TRIES = {"card-info": 3, "jpki-auth": 3, "jpki-sign": 5, "juki": 3, "common": 3}
NEW = {"card-info": "9154", "jpki-auth": "7703", "jpki-sign": "ZQXWV97310K", "juki": "6642",
       "common": "3187"}
STATUS_NAME = {"card-info": "card_info", "jpki-auth": "jpki_auth", "jpki-sign": "jpki_sign",
               "juki": "juki", "common": "common"}
DOCUMENT = "passport"


@pytest.fixture(scope="module")
def counter(rig_home: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A station of its own with Yamada's card issued in slot 0."""
    return station_with_yamada_card(rig_home, tmp_path_factory.mktemp("pin-reset"), CARD_PIN)


def verify_on_card(target: str, value: str) -> object:
    """VERIFY ``value`` against the target PIN on the card in slot 0: "ok", the tries
    left after a wrong value, or "blocked"."""
    aid, fid = PIN_TARGETS[target]
    with open_card(READER0) as channel:
        session = ApplicationSession(channel, aid)
        session.select()
        try:
            session.verify_pin(value, fid)
        except InvalidPinError as exc:
            return exc.tries_left
        except PinBlockedError:
            return "blocked"
    return "ok"


def block(target: str) -> None:
    wrong = "ZZZZ9999" if target == "jpki-sign" else "0000"
    results = [verify_on_card(target, wrong) for _ in range(MAX_TRIES[target])]
    assert results[-1] in (0, "blocked")
    assert verify_on_card(target, ISSUED[target]) == "blocked"  # even the right one


def pin_status(home: Path) -> dict:
    return json.loads(juki(home, "card", "pin", "status", "--reader", READER0, "--json").stdout)


def reset(counter: dict, target: str, value: str, *extra: str, check: int = 0,
          home: Path | None = None):  # type: ignore[no-untyped-def]
    return juki(home or counter["home"], *extra, "card", "pin", "reset", "--pin", target,
                "--reason", "forgotten", "--identity-document", DOCUMENT, "--reader", READER0,
                "--json", input=f"{counter['b']}\n{value}\n", check=check)


def events(home: Path, name: str) -> list[dict]:
    rows = station_registry(home).connection().execute(
        "SELECT entry FROM provision_log WHERE kind = 'event' ORDER BY idx").fetchall()
    return [e for e in (json.loads(r[0]) for r in rows) if e["event"] == name]


@pytest.mark.parametrize("target", ["card-info", "jpki-auth", "jpki-sign", "juki", "common"])
def test_a_blocked_pin_is_reset_and_no_other_pin_moves(counter: dict, target: str) -> None:
    home = counter["home"]
    juki(counter["rig"], "rig", "insert", "--slot", "0", "--state", str(counter["state"]))
    block(target)
    before = pin_status(home)
    assert before[STATUS_NAME[target]]["blocked"]

    done = json.loads(reset(counter, target, NEW[target]).stdout)
    assert (done["card_serial"], done["pin"], done["reset"]) == (counter["serial"], target, True)

    after = pin_status(home)
    assert after[STATUS_NAME[target]] == {"tries_left": MAX_TRIES[target], "verified": False,
                                          "blocked": False}
    others = {k: v for k, v in after.items() if k != STATUS_NAME[target]}
    assert others == {k: v for k, v in before.items() if k != STATUS_NAME[target]}
    assert verify_on_card(target, ISSUED[target]) == MAX_TRIES[target] - 1  # the old one fails
    assert verify_on_card(target, NEW[target]) == "ok"  # and the counter is full again
    ISSUED[target] = NEW[target]

    event = events(home, "pin-reset")[-1]
    assert (event["card_serial"], event["reason"], event["detail"]) == (
        counter["serial"], "forgotten", {"target": target, "identity_document": DOCUMENT,
                                         "card_serial": counter["serial"]})
    operation = station_registry(home).operation(done["operation"])
    assert (operation.kind, operation.status, operation.payload) == (
        "pin-reset", "done", {"target": target})


def test_the_sign_pin_format_is_refused_on_the_host(counter: dict) -> None:
    home = counter["home"]
    juki(counter["rig"], "rig", "insert", "--slot", "0", "--state", str(counter["state"]))
    before = pin_status(home)
    for bad in ("abc123", "ABC12", "A" * 17, "ABC-123"):
        result = reset(counter, "jpki-sign", bad, "-vvv", check=2)
        assert "6 to 16 characters of A-Z and 0-9" in result.stderr
        assert ">> " not in result.stderr  # not one APDU: refused before the card was opened
        assert bad not in result.stdout + result.stderr
    assert json.loads(reset(counter, "juki", "12a4", check=2).stdout)["error"]["type"] == \
        "PinInputError"
    assert pin_status(home) == before
    assert station_registry(home).open_operation_of(counter["serial"]) is None


def published_revocations(home: Path, out: Path) -> dict[str, tuple[int, set]]:
    """`juki crl publish --out DIR`: per CRL file its number and its entries (serial,
    reason)."""
    juki(home, "crl", "publish", "--out", str(out), "--json")
    crls = {}
    for path in sorted(out.glob("*.crl")):
        crl = x509.load_der_x509_crl(path.read_bytes())
        entries = set()
        for entry in crl:
            try:
                reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
            except x509.ExtensionNotFound:
                reason = None
            entries.add((entry.serial_number, reason))
        number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        crls[path.name] = (number, entries)
    assert crls, f"no CRL published in {out}"
    return crls


def revoke_another_sign_certificate(home: Path, serial: str) -> None:
    """A revoked signature certificate of another card under the same CA version as the
    card's, so the CRLs compared below are not empty."""
    import datetime as dt
    from types import SimpleNamespace

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    registry = station_registry(home)
    sign = registry.current_certificate(serial, "jpki-sign")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "another card")])
    now = dt.datetime.now(dt.UTC)
    other = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now).not_valid_after(now + dt.timedelta(days=365))
             .sign(key, hashes.SHA256()))
    with registry.transaction() as db:
        registry.record_certificate(db, SimpleNamespace(
            kind="jpki-sign", certificate=other, issuer_role=sign.issuer_role,
            issuer_version=sign.issuer_version), card_serial="999999999999999")
        registry.revoke_certificates(db, reason="key-lost",
                                     serial_numbers=(f"{other.serial_number:x}",))


def test_a_sign_pin_reset_revokes_nothing_and_the_value_leaks_nowhere(counter: dict) -> None:
    home = counter["home"]
    juki(counter["rig"], "rig", "insert", "--slot", "0", "--state", str(counter["state"]))
    revoke_another_sign_certificate(home, counter["serial"])  # the sign CA's CRL lists one
    crls_before = published_revocations(home, counter["root"] / "crl-before")
    registry = station_registry(home)
    query = "SELECT serial_number, kind, status, reason FROM certificates WHERE card_serial = ?"
    certificates = registry.connection().execute(query, (counter["serial"],)).fetchall()
    value = "QJX7W2KV9P"
    pins = counter["root"] / "reset-pins.txt"
    pins.write_text(f"collation_b={counter['b']}\njpki_sign_new={value}\n")
    os.chmod(pins, 0o600)
    result = juki(home, "-vvv", "card", "pin", "reset", "--pin", "jpki-sign", "--reason",
                  "blocked", "--identity-document", DOCUMENT, "--reader", READER0, "--pin-file",
                  str(pins), "--json")
    ISSUED["jpki-sign"] = value
    assert "2C 02 80" in result.stderr  # the reset was sent (its data redacted)
    for shown in (result.stdout, result.stderr):
        assert value not in shown and value.encode().hex() not in shown.lower()
    registry = station_registry(home)
    assert registry.connection().execute(query, (counter["serial"],)).fetchall() == certificates
    rows = registry.connection().execute("SELECT entry FROM provision_log").fetchall()
    assert not [r for r in rows if value in r[0]]
    journal = registry.connection().execute("SELECT payload, failure FROM card_operations")
    assert not [r for r in journal.fetchall() if value in str(r)]
    assert verify_on_card("jpki-sign", value) == "ok"
    # what a relying party sees: the same CRLs (new numbers), the same entries
    crls_after = published_revocations(home, counter["root"] / "crl-after")
    assert crls_after.keys() == crls_before.keys()
    assert any(entries for _number, entries in crls_before.values())
    for name, (number, entries) in crls_after.items():
        assert number > crls_before[name][0] and entries == crls_before[name][1], name


def test_an_operator_without_pin_reset_is_denied(counter: dict, station) -> None:  # type: ignore[no-untyped-def]
    home = counter["home"]
    registry = station_registry(home)
    registry.begin_enrolment("no-reset", "no-reset", "131016", frozenset({"verify"}), None,
                             "GUID-no-reset", None)
    registry.complete_enrolment("no-reset", b"not checked by the guard", None)
    settings = StationHome(home).settings()
    settings["station"]["mode"] = "operator"
    StationHome(home).write_settings(settings)
    try:
        operator = registry.operator("no-reset")
        start_session(StationHome(home), station.hsm, registry, operator)
        before = len(registry.denials())
        refused = reset(counter, "juki", "5555", check=7)
        assert "pin-reset" in refused.stderr
        last = station_registry(home).denials()[-1]
        assert len(station_registry(home).denials()) == before + 1
        assert (last.command, last.scope, last.operator_id) == ("card pin reset", "pin-reset",
                                                                "no-reset")
    finally:
        settings["station"]["mode"] = "open"
        StationHome(home).write_settings(settings)


def test_a_counterfeit_is_refused_before_any_reset_apdu(counter: dict, tmp_path: Path) -> None:
    home = counter["home"]
    fake = tmp_path / "fake.json"
    juki(counter["rig"], "emulator", "counterfeit", "--from", str(counter["state"]), "--to",
         str(fake))
    juki(counter["rig"], "rig", "insert", "--slot", "0", "--state", str(fake))
    journal = "SELECT id FROM card_operations WHERE card_serial = ?"
    operations = station_registry(home).connection().execute(journal, (counter["serial"],))
    before = len(operations.fetchall())
    result = reset(counter, "card-info", "1111", "-vvv", check=1)
    error = json.loads(result.stdout)["error"]
    assert error["type"] == "CardNotGenuineError" and "presence" in error["failed_checks"]
    assert "2C 02" not in result.stderr and "80 50" not in result.stderr  # no SCP03, no reset
    after = station_registry(home).connection().execute(journal, (counter["serial"],))
    assert len(after.fetchall()) == before  # not even journalled


def test_an_interrupted_reset_is_rolled_back_by_recover_with_the_note(counter: dict) -> None:
    """The reset's process died after its journal entry (owner gone): recover cannot
    finish it (the value was never stored) and rolls it back, telling the operator to
    reset again; no card is needed."""
    home = counter["home"]
    registry = station_registry(home)
    operation = registry.begin_operation(counter["serial"], "pin-reset", {"target": "juki"},
                                         dead_owner())
    listed = json.loads(juki(home, "issue", "recover", "--json").stdout)["operations"]
    assert [(o["id"], o["kind"], o["payload"]) for o in listed] == [
        (operation, "pin-reset", {"target": "juki"})]
    done = json.loads(juki(home, "issue", "recover", "--operation", str(operation),
                           "--json").stdout)
    assert done == {"operation": operation, "status": "rolled-back",
                    "note": "the PIN may or may not have been reset; reset it again"}
    assert station_registry(home).operation(operation).status == "rolled-back"
    event = events(home, "operation-rolled-back")[-1]
    assert event["detail"] == {"operation": operation, "kind": "pin-reset", "target": "juki"}
