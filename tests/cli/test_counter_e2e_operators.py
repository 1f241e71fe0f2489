"""操作履歴 of issue 13's counter operations in operator mode, end to end through pcscd,
vpcd and SoftHSM (SQLite, and PostgreSQL in the JUKI_DB pass): an operator logged in with
a PIV card does a move-out, a move-in, a name change, a PIN reset and a CRL publication;
`juki audit events --operator` shows exactly those events, each with that operator, the
station, the command's scope and the reason given, and no PIN, 照合番号B or new value.
An operator without `move` is denied `resident move-in` (recorded), the card untouched."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cardlib.apps.card_info import CardInfoApSession
from cardlib.constants import CardInfoFile
from tools.station.readers import open_card

from ..conftest import juki
from ..operator_helpers import (
    ADMIN_PIN,
    ADMIN_PUK,
    enroll,
    login,
    operator_mode,
    operator_station,
    station_registry,
)
from .rig_cards import issue_own_yamada_card
from .test_counter_e2e import PIN, PLACES, READER1, TODAY, snapshot

CLERK_SCOPES = "move,change-info,pin-reset,renew,crl-publish"
CLERK_PIN, CLERK_PUK = "314159", "27182818"


def card_attributes(reader: str) -> bytes:
    """The card-info EF 0002 as the card holds it (opened with the PIN)."""
    with open_card(reader) as channel:
        info = CardInfoApSession(channel)
        info.select()
        info.verify_pin(PIN, CardInfoFile.PIN)
        return info.read_physical(CardInfoFile.ATTRIBUTES)


@pytest.fixture(scope="module")
def operators(rig_home: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A station of its own: Yamada's card issued (open mode), then moved to slot 1;
    clerk (the counter scopes) and nomove (change-info and audit-read, not move) enrolled
    with PIV cards; operator mode."""
    root = tmp_path_factory.mktemp("counter-operators")
    home = operator_station(rig_home, root / "station")
    card = issue_own_yamada_card(home, root, root / "card.json", PIN, rig_home=rig_home)
    code = station_registry(home).get(card["serial"]).resident_code
    enroll(home, rig_home, root / "clerk.json", "clerk", CLERK_SCOPES, pin=CLERK_PIN,
           puk=CLERK_PUK)
    enroll(home, rig_home, root / "nomove.json", "nomove", "change-info,audit-read",
           pin=ADMIN_PIN, puk=ADMIN_PUK)
    operator_mode(home)
    juki(rig_home, "rig", "insert", "--slot", "1", "--state", str(root / "card.json"))
    station_id = json.loads(juki(home, "station", "status", "--json").stdout)["station"]
    return {"home": home, "rig": rig_home, "root": root, "code": code, "station": station_id,
            **card}


def _said(secret: str, text: str) -> bool:
    """Whether ``text`` holds ``secret``; a PIN of digits as a word of its own, not inside
    a hex digest or a serial number that happens to contain the same four digits."""
    if secret.isascii() and secret.isalnum():
        return re.search(rf"(?<![0-9A-Za-z]){re.escape(secret)}(?![0-9A-Za-z])", text) is not None
    return secret in text


def test_operator_events_name_the_operator_station_scope_and_reason(operators: dict) -> None:
    home, serial, code, root = (operators["home"], operators["serial"], operators["code"],
                                operators["root"])
    login(home, operators["rig"], root / "clerk.json", pin=CLERK_PIN)
    juki(operators["rig"], "rig", "insert", "--slot", "1", "--state", str(root / "card.json"))
    juki(home, "resident", "move-out", "--code", code, "--to", "141011", "--date",
         TODAY.isoformat(), "--reason", "転勤", "--json")
    moved = json.loads(juki(home, "resident", "move-in", "--address", PLACES["141011"],
                            "--municipality", "141011", "--date", TODAY.isoformat(),
                            "--reader", READER1, "--json", input=f"{PIN}\n").stdout)
    changed = json.loads(juki(home, "resident", "change", "--field", "name", "--value",
                              "佐藤　太郎", "--reason", "婚姻", "--date", TODAY.isoformat(),
                              "--reader", READER1, "--json", input=f"{PIN}\n").stdout)
    juki(home, "card", "pin", "reset", "--pin", "juki", "--reason", "失念",
         "--identity-document", "運転免許証", "--reader", READER1, "--json",
         input=f"{operators['b']}\n5820\n")
    crls = json.loads(juki(home, "crl", "publish", "--out", str(root / "crls"),
                           "--json").stdout)["crls"]
    login(home, operators["rig"], root / "nomove.json", pin=ADMIN_PIN)  # the auditor

    listed = json.loads(juki(home, "audit", "events", "--operator", "clerk",
                             "--json").stdout)["events"]
    assert {(e["operator"], e["station"]) for e in listed} == {("clerk", operators["station"])}
    got = [(e["event"], e["scope"], e["reason"]) for e in listed]
    expected = [("move-out", "move", "転勤"),
                ("certificate-issued", "move", "move-in"),
                ("certificate-revoked", "move", "four-info-changed"),
                ("move-in", "move", "転勤"),
                ("certificate-issued", "change-info", "change"),
                ("certificate-revoked", "change-info", "four-info-changed"),
                ("four-info-changed", "change-info", "婚姻"),
                ("pin-reset", "pin-reset", "失念"),
                *[("crl-published", "crl-publish", None)] * len(crls)]
    assert sorted(got, key=str) == sorted(expected, key=str), got
    # in the order they were done
    order = [e for e, _s, _r in got if not e.startswith("certificate-")]
    assert order == ["move-out", "move-in", "four-info-changed", "pin-reset",
                     *["crl-published"] * len(crls)]
    revoked = [e["detail"]["serial_numbers"] for e in listed
               if e["event"] == "certificate-revoked"]
    assert revoked == [",".join(moved["revoked_certificates"]),
                       ",".join(changed["revoked_certificates"])]
    assert [e["reason"] for e in listed if e["event"] == "move-in"] == ["転勤"]
    for event in listed:
        assert event["card_serial"] in (serial, None)
        for secret in (PIN, operators["b"], "5820", CLERK_PIN, "佐藤　太郎", PLACES["141011"]):
            assert not _said(secret, json.dumps(event, ensure_ascii=False)), (secret, event)
    assert json.loads(juki(home, "audit", "events", "--operator", "nomove",
                           "--json").stdout)["events"] == []


def test_an_operator_without_move_is_denied_move_in(operators: dict) -> None:
    home, root, code = operators["home"], operators["root"], operators["code"]
    registry = station_registry(home)
    open_move = registry.open_move_of(registry.get(operators["serial"]).resident_id)
    if open_move is None:
        login(home, operators["rig"], root / "clerk.json", pin=CLERK_PIN)
        juki(home, "resident", "move-out", "--code", code, "--to", "011002", "--date",
             TODAY.isoformat(), "--reason", "転勤")
    login(home, operators["rig"], root / "nomove.json", pin=ADMIN_PIN)
    juki(operators["rig"], "rig", "insert", "--slot", "1", "--state", str(root / "card.json"))
    before_card = card_attributes(READER1)
    before = snapshot(home, operators["serial"])
    denials = len(station_registry(home).denials())
    refused = juki(home, "resident", "move-in", "--address", PLACES["011002"],
                   "--municipality", "011002", "--date", TODAY.isoformat(), "--reader",
                   READER1, input=f"{PIN}\n", check=7)
    assert "operator nomove lacks the scope 'move'" in refused.stderr
    last = station_registry(home).denials()
    assert len(last) == denials + 1
    assert (last[-1].command, last[-1].scope, last[-1].operator_id) == (
        "resident move-in", "move", "nomove")
    assert snapshot(home, operators["serial"]) == before
    assert card_attributes(READER1) == before_card
    assert json.loads(juki(home, "audit", "events", "--operator", "nomove",
                           "--json").stdout)["events"] == []

