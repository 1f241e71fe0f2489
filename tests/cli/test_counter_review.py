"""Security review of issue 13, end to end (the rig's token, a station of its own): the
attacks that need the CLI and the station's operator mode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.operators.session import start_session
from tools.station.home import StationHome

from ..conftest import juki
from ..operator_helpers import operator_station, station_registry
from .rig_cards import dead_owner


def _as_operator(home: Path, hsm, operator_id: str, scopes: set[str]) -> None:  # type: ignore[no-untyped-def]
    registry = station_registry(home)
    registry.begin_enrolment(operator_id, operator_id, "131016", frozenset(scopes), None,
                             f"GUID-{operator_id}", None)
    registry.complete_enrolment(operator_id, b"not checked by the guard", None)
    start_session(StationHome(home), hsm, registry, registry.operator(operator_id))


def _mode(home: Path, mode: str) -> None:
    settings = StationHome(home).settings()
    settings["station"]["mode"] = mode
    StationHome(home).write_settings(settings)


@pytest.mark.parametrize(("kind", "scope"), [("pin-reset", "pin-reset")])
def test_recover_of_an_operation_needs_its_own_scope(rig_home: Path, tmp_path: Path, station,  # type: ignore[no-untyped-def]
                                                     kind: str, scope: str) -> None:
    """Hole (fixed): `issue recover --operation ID` needed only `issue`, so an operator
    without `pin-reset` (or `move`, `change-info`, `renew`) could finish or roll back
    that operation. Now it is refused by name, recorded as a denial, the journal
    untouched; with the scope it runs."""
    home = operator_station(rig_home, tmp_path / "station")
    registry = station_registry(home)
    operation = registry.begin_operation("A0000000000000000013", kind, {"target": "juki"},
                                         dead_owner())
    _mode(home, "operator")
    try:
        _as_operator(home, station.hsm, "issuer-only", {"issue"})
        listed = json.loads(juki(home, "issue", "recover", "--json").stdout)["operations"]
        assert [o["id"] for o in listed] == [operation]  # listing needs `issue` only
        before = len(station_registry(home).denials())
        refused = juki(home, "issue", "recover", "--operation", str(operation), "--json",
                       check=7)
        assert scope in refused.stderr
        denials = station_registry(home).denials()
        assert len(denials) == before + 1
        assert (denials[-1].command, denials[-1].scope, denials[-1].operator_id) == (
            "issue recover", scope, "issuer-only")
        assert station_registry(home).operation(operation).status == "interrupted"
        _as_operator(home, station.hsm, "issuer-and-scope", {"issue", scope})
        done = json.loads(juki(home, "issue", "recover", "--operation", str(operation),
                               "--json").stdout)
        assert done["status"] == "rolled-back"
    finally:
        _mode(home, "open")
