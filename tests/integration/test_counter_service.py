"""Counter work through the station service: `juki card pin reset` run by the operator
uid as a client, 照合番号B and the new PIN on the client's stdin, relayed to the service
(which asks the client for its stdin); no option takes the PIN on the command line."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

from cardlib.collation import collation_b
from tools.registry import new_record_code
from tools.rig.service import Service, operator_file

from ..conftest import ROOT, juki
from ..operator_helpers import READER

YAMADA = ROOT / "fixtures" / "requests" / "resident-yamada.json"
OLD_PIN, NEW_PIN = "7319", "5820"
CARD_PINS = f"card_info={OLD_PIN}\njpki_auth=2468\njpki_sign=SIGN2026\n"


def issue_through(service: Service, rig_home: Path, tmp_path: Path) -> dict:  # type: ignore[type-arg]
    juki(rig_home, "rig", "insert", "--slot", "0", "--state", str(tmp_path / "card.json"))
    request = json.loads(YAMADA.read_text(encoding="utf-8")) | {
        "resident_code": new_record_code()}
    operator_file(service, "request.json", json.dumps(request, ensure_ascii=False), 0o644)
    operator_file(service, "pins.txt", CARD_PINS)
    issued = json.loads(service.client("issue", "resident", "request.json", "--reader", READER,
                                       "--pin-file", "pins.txt", "--json").stdout)
    issued["b"] = collation_b(dt.date.fromisoformat(request["birth_date"]),
                              int(issued["expiry"][:4]), issued["card_face"]["security_code"])
    return issued


def reset(service: Service, *extra: str, stdin: str, check: int = 0):  # type: ignore[no-untyped-def]
    return service.client("card", "pin", "reset", "--pin", "card-info", "--reason", "forgotten",
                          "--identity-document", "passport", "--reader", READER,
                          *extra, "--json", input=stdin, check=check)


def test_pin_reset_through_the_service_takes_the_new_pin_from_stdin(
        service: Service, rig_home: Path, tmp_path: Path) -> None:
    issued = issue_through(service, rig_home, tmp_path)
    serial = issued["card_serial"]
    # attack: the new PIN on the command line is not an option the client has
    refused = reset(service, "--new-pin", NEW_PIN, stdin=f"{issued['b']}\n", check=2)
    assert "No such option" in refused.stderr and NEW_PIN not in refused.stdout

    done = json.loads(reset(service, stdin=f"{issued['b']}\n{NEW_PIN}\n").stdout)
    assert (done["card_serial"], done["pin"], done["reset"]) == (serial, "card-info", True)

    # relayed: the card now takes the value that travelled only on stdin, not the old one
    verdict = json.loads(service.client("verify", "--reader", READER, "--json",
                                        input=f"{NEW_PIN}\n").stdout)
    assert verdict["genuine"] and verdict["card_serial"] == serial
    old = service.client("verify", "--reader", READER, "--json", input=f"{OLD_PIN}\n",
                         check=None)
    assert old.returncode != 0 and '"genuine": true' not in old.stdout
    # the value is in no output, no journal row and no 操作履歴 event of the service's
    # registry (read-only: the file stays the service's)
    registry = sqlite3.connect(f"file:{service.home.registry_file}?mode=ro", uri=True)
    try:
        operation = registry.execute("SELECT kind, status, payload FROM card_operations "
                                     "WHERE id = ?", (done["operation"],)).fetchone()
        assert (operation[0], operation[1], json.loads(operation[2])) == (
            "pin-reset", "done", {"target": "card-info"})
        rows = [r[0] for r in registry.execute(
            "SELECT entry FROM provision_log WHERE kind = 'event'").fetchall()]
        events = [json.loads(r) for r in rows]
        assert [e["detail"]["target"] for e in events
                if e["event"] == "pin-reset" and e["card_serial"] == serial] == ["card-info"]
        journal = registry.execute("SELECT payload, failure FROM card_operations").fetchall()
        assert not [r for r in [*rows, *map(str, journal)] if NEW_PIN in r]
    finally:
        registry.close()
    assert NEW_PIN not in json.dumps(done)
