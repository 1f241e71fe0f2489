"""操作履歴 is atomic with the change, in the real token: a PKCS#11 fault at any call of a
`card suspend` (the event's MAC, the token head) leaves the card active, the log and the
head as they were; the next try commits both and the log verifies. Keys: `juki hsm init`
on a fresh token records one key-created event per key it made and none when it made
nothing; a CV rotation records key-rotated for the CA and the key it certifies."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest

from hsm.errors import HsmError
from tests.conftest import create_database, juki
from tests.helpers import run_on_own_token
from tests.integration.test_issuance_faults import InjectedFaults
from tools.audit import anchors, log
from tools.audit.events import Actor, EventRecorder
from tools.audit.verify import verify_log
from tools.registry import Registry, new_record_code
from tools.rig.rig import Rig
from tools.station.home import StationHome

ACTOR = Actor("station-fault", "Asia/Tokyo", "alice", "revoke")


def test_a_token_fault_during_the_event_rolls_the_suspension_back(station, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import pkcs11

    hsm = station.hsm
    registry = Registry(tmp_path / "registry.sqlite")
    registry.event_sink = EventRecorder(lambda: hsm, lambda: ACTOR)
    registry.begin_issuance("S1", "resident", new_record_code(), "131016", dt.date(2036, 1, 1))
    registry.complete_issuance("S1", b"cert")
    db = registry.connection()
    with InjectedFaults(hsm, fail_at=10**6, error=Exception) as counting:
        registry.set_status("S1", "suspended", "probe")
        registry.set_status("S1", "active", "probe")
    calls = counting.count // 2
    assert calls >= 2  # at least the MAC and the head
    for k in range(calls):
        size, head = log.size(db), anchors.read_head(hsm, db)
        with InjectedFaults(hsm, fail_at=k, error=pkcs11.DeviceRemoved), \
                pytest.raises((HsmError, pkcs11.PKCS11Error)):
            registry.set_status("S1", "suspended", "lost card")  # call k fails: no commit
        card = registry.get("S1")
        assert card is not None and card.status == "active", k
        assert log.size(db) == size and anchors.read_head(hsm, db) == head, k
    registry.set_status("S1", "suspended", "lost card")
    last = log.entry_at(db, log.size(db) - 1)
    assert last is not None and (last.fields["event"], last.fields["reason"]) == (
        "card-suspended", "lost card")
    assert verify_log(db, hsm, tmp_path / "checkpoints").ok


def test_hsm_init_records_each_key_it_creates(tmp_path: Path) -> None:
    home = tmp_path / "home"
    Rig(StationHome(home)).ensure_token()  # a token of its own: every key is new
    if os.environ.get("JUKI_DB"):  # the PostgreSQL pass: a registry of its own too
        station = StationHome(home)
        settings = station.settings()
        settings["registry"] = {"url": create_database("juki_keys")}
        station.write_settings(settings)
    first = json.loads(juki(home, "hsm", "init", "--json").stdout)
    created = sorted(k["label"] for k in first["keys"] if k["created"])
    events = json.loads(juki(home, "audit", "events", "--json").stdout)["events"]
    assert sorted(f"juki/{e['detail']['role']}/v{e['detail']['version']}" for e in events) \
        == created and len(created) > 10
    assert {(e["event"], e["reason"], e["operator"], e["scope"]) for e in events} == {
        ("key-created", "hsm init", None, "operator-admin")}  # an open station: no operator
    again = json.loads(juki(home, "hsm", "init", "--json").stdout)
    assert not again["created"]
    assert json.loads(juki(home, "audit", "events", "--json").stdout)["events"] == events
    assert json.loads(juki(home, "audit", "verify", "--json").stdout)["ok"]


ROTATE = """
from hsm.roles import KeyRole
from tools.audit.events import Actor, EventRecorder, rotate_cv_key
from tools.audit.verify import verify_log

registry.event_sink = EventRecorder(lambda: hsm, lambda: Actor("st", "Asia/Tokyo", "alice",
                                                               "operator-admin"))
version = rotate_cv_key(hsm, registry, KeyRole.CV_CARD_INFO_CA, "scheduled rotation")
db = registry.connection()
rows = [json.loads(r[0]) for r in db.execute("SELECT entry FROM provision_log ORDER BY idx")]
print(json.dumps({"version": version, "events": rows,
                  "ok": verify_log(db, hsm, home.root / "checkpoints").ok}))
"""


def test_a_cv_rotation_records_key_rotated_for_each_role_rotated(tmp_path: Path) -> None:
    out = run_on_own_token(ROTATE, tmp_path / "home")
    assert out["version"] == 2 and out["ok"]
    assert [(e["event"], e["reason"], e["operator"], e["detail"]) for e in out["events"]] == [
        ("key-rotated", "scheduled rotation", "alice",
         {"role": "cv-card-info-ca", "version": 2, "previous": 1}),
        ("key-rotated", "scheduled rotation", "alice",
         {"role": "cv-card-info-signer", "version": 2, "previous": 1})]
