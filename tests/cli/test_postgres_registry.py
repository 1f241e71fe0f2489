"""The station on a PostgreSQL registry (`--db` / JUKI_DB): the same commands, the same
answers as on SQLite."""

from __future__ import annotations

import json
from pathlib import Path

from tools.registry.schema import MIGRATIONS
from tools.rig.rig import reader_name

from ..conftest import juki
from ..operator_helpers import operator_station
from .test_commands import PIN, READ_FOR, insert_blank, pin_file, request_file

PIN_IN = f"{PIN}\n"


def test_station_on_postgresql(rig_home: Path, tmp_path: Path, fresh_postgres: str) -> None:
    # a station of its own on the rig's token and readers: in the TLS pass the rig's home is
    # enrolled with the shared registry and would refuse a URL without TLS
    home = operator_station(rig_home, tmp_path / "station")
    env = {"JUKI_DB": fresh_postgres}
    assert json.loads(juki(home, "db", "upgrade", "--json", env=env).stdout) == {
        "schema_version": len(MIGRATIONS), "backend": "postgresql"}
    serial = insert_blank(rig_home, tmp_path)
    issued = json.loads(juki(home, "issue", "resident", str(request_file(tmp_path)),
                             "--pin-file", str(pin_file(tmp_path)), "--json", env=env).stdout)
    assert issued["card_serial"] == serial
    verify = ["verify", "--reader", reader_name(0), "--json"]
    assert json.loads(juki(home, *verify, env=env, input=PIN_IN).stdout)["genuine"]
    # the home's own registry (SQLite, or its database in the PG pass) knows nothing of it
    assert not json.loads(juki(home, *verify, check=1, input=PIN_IN).stdout)["genuine"]
    juki(home, "card", "suspend", serial, "--reason", "check", env=env)
    juki(home, *verify, check=1, env=env, input=PIN_IN)
    juki(home, "card", "resume", serial, env=env)
    code = json.loads(request_file(tmp_path).read_text(encoding="utf-8"))["resident_code"]
    changed = json.loads(juki(home, "resident", "change-code", "--code", code, "--reason",
                              "本人の請求", "--json", env=env).stdout)
    assert json.loads(juki(home, "card", "code", *READ_FOR, "--json", env=env,
                           input=PIN_IN).stdout)[
        "resident_code"] == changed["new_code"]
    listed = json.loads(juki(home, "card", "list", "--json", env=env).stdout)
    assert [(c["serial"], c["status"]) for c in listed] == [(serial, "active")]
    assert json.loads(juki(home, *verify, env=env, input=PIN_IN).stdout)["genuine"]
