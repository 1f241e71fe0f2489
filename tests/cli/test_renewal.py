"""`juki card renew`, `card list --expiring` and verify's certificate report end to end
(pcscd, vpcd, SoftHSM, the registry of the run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography import x509

from cardlib.apps.jpki import JpkiApSession
from cardlib.constants import JpkiFile
from tools.station.readers import open_card

from ..conftest import juki
from ..operator_helpers import station_registry
from .rig_cards import dead_owner, station_with_yamada_card
from .test_audit import READER0

CARD_PIN = "5173"


@pytest.fixture(scope="module")
def counter(rig_home: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    return station_with_yamada_card(rig_home, tmp_path_factory.mktemp("renewal"), CARD_PIN)


def renew(counter: dict, *args: str, check: int = 0):  # type: ignore[no-untyped-def]
    juki(counter["rig"], "rig", "insert", "--slot", "0", "--state", str(counter["state"]))
    return juki(counter["home"], "card", "renew", *args, "--reader", READER0, "--json",
                input=f"{CARD_PIN}\n", check=check)


def current(counter: dict) -> dict[str, str]:
    registry = station_registry(counter["home"])
    return {kind: registry.current_certificate(counter["serial"], kind).serial_number
            for kind in ("card", "jpki-auth", "jpki-sign")}


def card_auth_certificate() -> x509.Certificate:
    with open_card(READER0) as channel:
        jpki = JpkiApSession(channel)
        jpki.select()
        return x509.load_der_x509_certificate(jpki.read_tlv_file(JpkiFile.AUTH_CERT))


def test_refusals_name_the_window_and_the_dates(counter: dict) -> None:
    before = current(counter)
    result = renew(counter, "--window", "30", check=2)
    assert "nothing to renew" in result.stderr and "30-day renewal window" in result.stderr
    assert "jpki-auth until" in result.stderr and "jpki-sign until" in result.stderr
    result = renew(counter, "--window", "4000", check=2)
    assert "reissue the card" in result.stderr and "itself expires on" in result.stderr
    assert current(counter) == before
    assert station_registry(counter["home"]).open_operation_of(counter["serial"]) is None


def test_card_list_expiring(counter: dict) -> None:
    home = counter["home"]
    assert json.loads(juki(home, "card", "list", "--expiring", "30", "--json").stdout) == []
    rows = json.loads(juki(home, "card", "list", "--expiring", "2000", "--json").stdout)
    assert [r["serial"] for r in rows] == [counter["serial"]]
    assert {d["what"] for d in rows[0]["due"]} == {"jpki-auth", "jpki-sign"}
    assert all(not d["expired"] for d in rows[0]["due"])
    assert "due: jpki-auth" in juki(home, "card", "list", "--expiring", "2000").stdout


def test_renewal_regenerates_the_keys_and_replaces_the_certificates(counter: dict,
                                                                    tmp_path: Path) -> None:
    home = counter["home"]
    before = current(counter)
    old_key = card_auth_certificate().public_key()
    done = json.loads(renew(counter, "--window", "2000").stdout)
    after = current(counter)
    assert after["card"] == before["card"]  # the card certificate is the card's own
    assert after["jpki-auth"] != before["jpki-auth"] and after["jpki-sign"] != before["jpki-sign"]
    assert sorted(done["revoked"]) == sorted([before["jpki-auth"], before["jpki-sign"]])
    registry = station_registry(home)
    for kind in ("jpki-auth", "jpki-sign"):
        old = registry.certificate(before[kind])
        assert (old.status, old.reason) == ("revoked", "renewed")
    # the card holds the new certificate, over a new key that signs under it
    on_card = card_auth_certificate()
    assert f"{on_card.serial_number:x}" == after["jpki-auth"]
    assert on_card.public_key().public_numbers() != old_key.public_numbers()
    document = tmp_path / "doc.txt"
    document.write_text("renewed")
    pins = tmp_path / "pins.txt"
    pins.write_text("jpki_auth=2468\n")
    pins.chmod(0o600)
    juki(home, "card", "sign", str(document), "--key", "auth", "--reader", READER0,
         "--pin-file", str(pins))
    assert (tmp_path / "doc.txt.p7s").stat().st_size > 0
    event = [json.loads(r[0]) for r in registry.connection().execute(
        "SELECT entry FROM provision_log WHERE kind = 'event' ORDER BY idx")][-1]
    assert event["event"] == "certificates-renewed" and event["card_serial"] == counter["serial"]
    assert event["detail"]["new_jpki_auth"] == after["jpki-auth"]
    assert event["detail"]["old_jpki_sign"] == before["jpki-sign"]
    operation = registry.operation(done["operation"])
    assert (operation.kind, operation.status) == ("renew", "done")
    # renewed: nothing is due any more within the window that found them
    renew(counter, "--window", "1000", check=2)


def test_verify_reports_an_expired_certificate_apart_from_the_card(counter: dict) -> None:
    home = counter["home"]
    juki(counter["rig"], "rig", "insert", "--slot", "0", "--state", str(counter["state"]))
    serial_number = current(counter)["jpki-auth"]
    # time travel on the registry's side: the auth certificate's end put in the past
    registry = station_registry(home)
    with registry.transaction() as db:
        db.execute("UPDATE certificates SET not_after = ? WHERE serial_number = ?",
                   ("2020-01-01T23:59:59+00:00", serial_number))
    verdict = json.loads(juki(home, "verify", "--reader", READER0, "--json",
                              input=f"{CARD_PIN}\n").stdout)
    assert verdict["genuine"] is True and verdict["card_expired"] is False
    report = {c["kind"]: c for c in verdict["certificates"]}
    assert report["jpki-auth"] == {"kind": "jpki-auth", "serial_number": serial_number,
                                   "not_after": "2020-01-01T23:59:59+00:00", "status": "valid",
                                   "expired": True}
    assert report["jpki-sign"]["expired"] is False and report["card"]["expired"] is False
    text = juki(home, "verify", "--reader", READER0, input=f"{CARD_PIN}\n").stdout
    assert text.startswith("GENUINE") and "card: within its expiry" in text
    assert f"certificate jpki-auth: {serial_number} until 2020-01-01T23:59:59+00:00, valid, " \
           "EXPIRED" in text
    # and it is coming due (already expired) in the list
    rows = json.loads(juki(home, "card", "list", "--expiring", "0", "--json").stdout)
    assert [(d["what"], d["expired"]) for r in rows for d in r["due"]] == [("jpki-auth", True)]


def test_a_suspended_card_is_not_renewed(counter: dict) -> None:
    home = counter["home"]
    juki(home, "card", "suspend", counter["serial"], "--reason", "reported missing")
    try:
        result = renew(counter, "--window", "2000", check=2)
        assert f"card {counter['serial']} is suspended (reported missing)" in result.stderr
        assert "renewal is refused" in result.stderr
    finally:
        juki(home, "card", "resume", counter["serial"])


def test_an_interrupted_renewal_is_finished_by_recover(counter: dict) -> None:
    """A renewal whose process died after its journal entry is run again by `juki issue
    recover --operation ID` with the card present: new keys, the journalled old
    certificates revoked, the journal done."""
    home = counter["home"]
    before = current(counter)
    registry = station_registry(home)
    old = {"jpki-auth": before["jpki-auth"], "jpki-sign": before["jpki-sign"]}
    operation = registry.begin_operation(counter["serial"], "renew",
                                         {"old": old, "window_days": 90, "today": "2030-01-01"},
                                         dead_owner())
    renew(counter, "--window", "2000", check=2)  # one open operation per card
    juki(counter["rig"], "rig", "insert", "--slot", "0", "--state", str(counter["state"]))
    done = json.loads(juki(home, "issue", "recover", "--operation", str(operation),
                           "--reader", READER0, "--json").stdout)
    assert done["status"] == "done" and sorted(done["revoked"]) == sorted(old.values())
    after = current(counter)
    assert after["jpki-auth"] not in old.values() and after["jpki-sign"] not in old.values()
    assert f"{card_auth_certificate().serial_number:x}" == after["jpki-auth"]
    assert station_registry(home).operation(operation).status == "done"
