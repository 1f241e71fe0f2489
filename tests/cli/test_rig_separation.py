"""Issue 11 defect 8 and the rig re-insert problem: rig and production are separate.

- every rig, emulator and demo command is denied (exit 7, recorded) on a station in
  operator mode, session or not, and writes nothing;
- the card maker's key export works only on a rig's own marked test token: a station
  token set up by `juki hsm init` never lets a derived key out;
- `rig insert --kind K` never silently inserts a card of another kind."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from cardlib.emulator.state import StateFile
from tools.rig.rig import reader_name
from tools.rig.softhsm_token import init_token
from tools.station.home import StationHome

from ..conftest import enroll_in_shared_registry, juki
from ..operator_helpers import operator_mode, operator_station, station_registry

NO_VPCD_PORT = "1"  # nothing listens there: an emulator that wrongly ran would fail, not hang


@pytest.mark.parametrize("kind", ["operator", "resident"])
def test_emulator_run_is_denied_on_an_operator_mode_station(rig_home: Path, tmp_path: Path,
                                                            kind: str) -> None:
    """The issue's attack: operator mode, no session, `juki emulator run --kind K`."""
    home = operator_station(rig_home, tmp_path / "station")
    operator_mode(home)
    state = tmp_path / f"{kind}.json"
    result = juki(home, "emulator", "run", "--kind", kind, "--state", str(state),
                  "--port", NO_VPCD_PORT, check=7)
    assert "`juki emulator run` is a test-rig command" in result.stderr
    assert "operator mode" in result.stderr
    assert not state.exists()  # no card, so no exported key, was written
    denial = station_registry(home).denials()[-1]
    assert (denial.command, denial.operator_id) == ("emulator run", None)


def test_every_rig_command_is_denied_on_an_operator_mode_station(rig_home: Path,
                                                                 tmp_path: Path) -> None:
    home = operator_station(rig_home, tmp_path / "station")
    operator_mode(home)
    source = tmp_path / "source.json"
    for args in (("rig", "up", "--blank", "1"), ("rig", "status"), ("rig", "down"),
                 ("rig", "insert", "--slot", "0"), ("rig", "remove", "--slot", "0"),
                 ("emulator", "counterfeit", "--from", str(home / "config.toml"), "--to",
                  str(source)),
                 ("demo", "--workdir", str(tmp_path / "demo"))):
        result = juki(home, *args, check=7)
        assert "is a test-rig command" in result.stderr, args
    assert not source.exists() and not (tmp_path / "demo").exists()
    assert not (home / "rig").exists() and not (home / "cards").exists()
    commands = [d.command for d in station_registry(home).denials()]
    assert commands == ["rig up", "rig status", "rig down", "rig insert", "rig remove",
                        "emulator counterfeit", "demo"]
    status = json.loads(juki(rig_home, "rig", "status", "--json").stdout)
    assert status["pcscd"]["running"]  # the shared rig was not brought down


def production_station(rig_home: Path, root: Path) -> Path:
    """An open station whose token is not the rig's: a token of its own (in the same
    SoftHSM, as a second HSM partition would be), set up by `juki hsm init`."""
    rig = StationHome(rig_home)
    pin = (rig.secrets_dir / "token.pin").read_text().strip()
    label = f"production-{secrets.token_hex(4)}"
    init_token(rig.softhsm_dir / "softhsm2.conf", label, pin, pin)
    home = StationHome(root)
    hsm = rig.settings()["hsm"]
    home.write_settings({"hsm": {"module": hsm["module"], "token_label": label,
                                 "pin_file": str(rig.secrets_dir / "token.pin"),
                                 "softhsm2_conf": str(rig.softhsm_dir / "softhsm2.conf")},
                         # open by root's word: open even beside a shared registry's admins
                         "station": {"mode": "open"}})
    enroll_in_shared_registry(root)  # the PostgreSQL pass: a station of the shared registry
    juki(root, "hsm", "init")  # the card masters and PIV management master are there
    return root


def test_no_derived_key_ever_leaves_a_production_token(rig_home: Path, tmp_path: Path) -> None:
    home = production_station(rig_home, tmp_path / "production")
    for kind in ("operator", "resident"):
        state = tmp_path / f"{kind}.json"
        result = juki(home, "emulator", "run", "--kind", kind, "--state", str(state),
                      "--port", NO_VPCD_PORT, check=4)
        assert "is not a test rig's token" in result.stderr
        assert "key export is refused" in result.stderr
        assert not state.exists()
    result = juki(home, "rig", "up", "--blank", "1", check=5)
    assert "names a token the rig did not make" in result.stderr
    assert not (home / "rig" / "state.json").exists()


def test_insert_with_another_kind_makes_a_new_card_or_is_refused(rig_home: Path,
                                                                 tmp_path: Path) -> None:
    """After `rig up --blank 1` slot 0's own card is a resident card: `--kind operator`
    makes a new operator card instead of silently re-inserting it."""
    juki(rig_home, "rig", "insert", "--slot", "0")  # the slot's own resident card
    resident = rig_home / "cards" / "card-00.json"
    before = resident.read_bytes()
    inserted = json.loads(juki(rig_home, "rig", "insert", "--slot", "0", "--kind", "operator",
                               "--json").stdout)
    assert inserted["state"] == str(rig_home / "cards" / "operator-00.json")
    readers = json.loads(juki(rig_home, "readers", "--json").stdout)
    slot0 = next(r for r in readers if r["name"] == reader_name(0))
    assert slot0["profile"] == "operator (PIV)"
    assert resident.read_bytes() == before  # the resident card was not touched

    result = juki(rig_home, "rig", "insert", "--slot", "0", "--kind", "operator", "--state",
                  str(resident), check=5)
    assert f"{resident} holds a resident card, but --kind operator was asked for" in result.stderr
    readers = json.loads(juki(rig_home, "readers", "--json").stdout)
    assert next(r for r in readers if r["name"] == reader_name(0))["profile"] == "operator (PIV)"

    # the same state file without --kind goes in as what it is
    juki(rig_home, "rig", "insert", "--slot", "0", "--state", str(resident))
    readers = json.loads(juki(rig_home, "readers", "--json").stdout)
    slot0 = next(r for r in readers if r["name"] == reader_name(0))
    assert slot0["profile"] == "resident"
    assert slot0["card_serial"] == StateFile(resident).load().serial
