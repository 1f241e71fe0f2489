"""The full role × command matrix of operator mode, in process (the same `main()` the
`juki` script runs): every guarded command with a session holding each single scope,
and with no session. Denied ⇔ exit 7 ⇔ one more recorded denial, before any work.

Sessions are minted directly (start_session with the token's MAC key) for operators
put in the registry directly: this tests authorisation, not login (tests/cli does that).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import click
import pytest

from tools.cli import main as cli_module
from tools.cli.common import ExitCode
from tools.errors import PermissionDeniedError
from tools.operators.session import current_session, end_session, start_session
from tools.registry import Registry
from tools.station.home import StationHome
from tools.station.scopes import (
    ANY_SCOPE,
    COMMAND_FIELDS,
    COMMAND_SCOPES,
    FIELD_SCOPES,
    RIG_COMMANDS,
    SCOPES,
    SESSION_FREE,
)

from ..operator_helpers import operator_station, registry_target, station_registry

NO_READER = "no-such-reader"
SERIAL = "000000000000000"


def leaf_commands() -> dict[str, click.Command]:
    found: dict[str, click.Command] = {}

    def walk(group: click.Group, prefix: str) -> None:
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                walk(command, f"{prefix}{name} ")
            else:
                found[f"{prefix}{name}"] = command

    walk(cli_module.cli, "")
    return found


def test_every_command_has_a_scope_decision() -> None:
    """A new command is denied in operator mode until it is given a scope (or declared
    session-free); this test makes the decision explicit."""
    commands = set(leaf_commands())
    assert commands == set(COMMAND_SCOPES) | SESSION_FREE | ANY_SCOPE | RIG_COMMANDS
    tables = [set(COMMAND_SCOPES), SESSION_FREE, ANY_SCOPE, RIG_COMMANDS]
    assert sum(len(t) for t in tables) == len(commands)  # each command in exactly one
    assert set(COMMAND_SCOPES.values()) <= set(SCOPES)
    assert not set(COMMAND_SCOPES) & SESSION_FREE


def arguments(path: str, command: click.Command, files: dict[str, Path]) -> list[str]:
    required = {
        "issue resident": [str(files["request"])],
        "issue batch": [str(files["batch"])],
        "card pin change": ["card_info"],
        "card pin reset": ["--pin", "card-info", "--reason", "test", "--identity-document",
                           "passport"],
        "card sign": [str(files["request"]), "--key", "auth"],  # sign key: see FIELD_CASES
        "card show": [SERIAL],
        "card suspend": [SERIAL, "--reason", "test"],
        "card resume": [SERIAL],
        "card revoke": [SERIAL, "--reason", "lost"],
        "card reissue": [SERIAL, str(files["request"])],
        "resident change-code": ["--code", "12345678901", "--reason", "test"],
        "resident move-out": ["--code", "12345678901", "--to", "011002", "--date",
                              "2026-01-01", "--reason", "test"],
        "resident moves": ["--code", "12345678901"],
        "resident move-in": ["--address", "x", "--municipality", "011002", "--date",
                             "2026-01-01"],
        "resident change": ["--field", "name", "--value", "x", "--reason", "test", "--date",
                            "2026-01-01"],
        "operator enroll": ["--id", "nobody", "--name", "N", "--municipality", "131016",
                            "--scopes", "verify"],
        "operator show": ["--id", "nobody"],
        "operator suspend": ["--id", "nobody"],
        "operator resume": ["--id", "nobody"],
        "operator revoke": ["--id", "nobody", "--reason", "test"],
        "operator unlock": ["--id", "nobody"],
        "operator unblock": ["--id", "nobody"],
        "station mode": ["operator"],
        "card read": ["--recipient", "NENKIN", "--purpose", "B1-57"],
        "card code": ["--recipient", "NENKIN", "--purpose", "B1-57"],
        "card dump": ["--out", "dump-out"],
        "card face": ["--out", "face-out", "--recipient", "NENKIN", "--purpose", "B1-57"],
        "audit proof": ["--index", "0"],
        "audit consistency": ["--old", "1"],
        "audit self": ["--code", "12345678901"],
        "crl publish": ["--out", str(files["request"].parent / "crl-out")],
        "provide batch": [str(files["request"]), "--recipient", "NENKIN", "--purpose", "B1-57"],
    }.get(path, [])
    names = {p.name for p in command.params}
    extra = (["--reader", NO_READER] if "reader" in names else []) + (
        ["--timeout", "0.1"] if "timeout" in names else [])
    return [*path.split(), *required, *extra]


def run(home: Path, argv: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # PIN prompts get no PINs
    try:
        cli_module.main(["--home", str(home), *argv])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture(scope="module")
def matrix_home(rig_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = operator_station(rig_home, tmp_path_factory.mktemp("matrix") / "station")
    registry = station_registry(home)
    for scope in SCOPES:
        operator_id = f"m-{scope}"
        registry.begin_enrolment(operator_id, operator_id, "131016", frozenset({scope}), None,
                                 f"GUID-{scope}", None)
        registry.complete_enrolment(operator_id, b"not checked by the guard", None)
    station = StationHome(home)
    settings = station.settings()
    settings["station"]["mode"] = "operator"
    station.write_settings(settings)
    (home / "request.json").write_text("{}")
    (home / "batch.json").write_text(json.dumps({"requests": []}))
    return home


def session_holding(matrix_home: Path, station, scope: str | None,  # type: ignore[no-untyped-def]
                    monkeypatch: pytest.MonkeyPatch) -> Registry:
    """The matrix station's own registry, with this process's session ended and, for a
    scope, a new one of the operator holding just that scope."""
    monkeypatch.setenv("JUKI_DB", str(registry_target(matrix_home)))  # this station's own
    home, registry = StationHome(matrix_home), station_registry(matrix_home)
    end_session(home, registry)
    if scope is not None:
        operator = registry.operator(f"m-{scope}")
        assert operator is not None
        start_session(home, station.hsm, registry, operator)
    return registry


@pytest.mark.parametrize("scope", [None, *SCOPES])
def test_role_by_command_matrix(matrix_home: Path, station, scope: str | None,  # type: ignore[no-untyped-def]
                                monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    registry = session_holding(matrix_home, station, scope, monkeypatch)
    files = {"request": matrix_home / "request.json", "batch": matrix_home / "batch.json"}
    outcomes = {}
    for path, command in sorted(leaf_commands().items()):
        if path in SESSION_FREE | ANY_SCOPE | RIG_COMMANDS:
            continue  # see test_logout_needs_a_session, test_rig_commands_are_always_denied
        before = len(registry.denials())
        code = run(matrix_home, arguments(path, command, files), monkeypatch)
        denied = code == ExitCode.DENIED
        recorded = len(registry.denials()) - before
        outcomes[path] = (code, recorded)
        should_deny = scope is None or COMMAND_SCOPES[path] != scope
        assert denied == should_deny, f"{path} with scope {scope}: exit {code}"
        assert recorded == (1 if should_deny else 0), path
        if should_deny:
            last = registry.denials()[-1]
            assert last.command == path and last.scope == COMMAND_SCOPES[path]
            assert last.operator_id == (f"m-{scope}" if scope else None)
    capsys.readouterr()
    allowed = [p for p, (code, _) in outcomes.items() if code != ExitCode.DENIED]
    assert sorted(allowed) == sorted(p for p, s in COMMAND_SCOPES.items() if s == scope)


# Arguments that ask for a field guarded beyond the command scope and refused without it
# (tools/station/scopes.py FIELD_SCOPES, docs/scopes.md): each case needs both scopes.
FIELD_CASES = {
    ("card certs", "signature_certificate"): ["--with-sign"],
    ("card sign", "signature_certificate"): ["{request}"],  # --key sign is the default
    ("audit recipients", "recipient_table"): ["--load", "{request}"],
    ("audit self", "representative_request"): ["--code", "12345678901", "--representative",
                                               "R", "--basis", "B"],
}


def test_every_refused_field_has_a_case() -> None:
    refused = {(c, f) for c, fields in COMMAND_FIELDS.items() for f in fields
               if FIELD_SCOPES[f][1] == "refuse"}
    assert refused == set(FIELD_CASES)


def scope_sets() -> list[frozenset[str]]:
    pairs = {frozenset({COMMAND_SCOPES[c], FIELD_SCOPES[f][0]}) for c, f in FIELD_CASES}
    return [frozenset(), *(frozenset({s}) for s in SCOPES), *sorted(pairs, key=sorted)]


@pytest.mark.parametrize("scopes", scope_sets(), ids=lambda s: "+".join(sorted(s)) or "none")
def test_field_by_scope_matrix(matrix_home: Path, station, scopes: frozenset[str],  # type: ignore[no-untyped-def]
                               monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    """Each refused field × each single scope, no session, and the pair it needs: denied
    (exit 7, one denial naming the first missing scope) unless both are held."""
    home = StationHome(matrix_home)
    monkeypatch.setenv("JUKI_DB", str(registry_target(matrix_home)))
    registry = station_registry(matrix_home)
    end_session(home, registry)
    operator_id = "mf-" + "-".join(sorted(scopes))
    if scopes:
        if registry.operator(operator_id) is None:
            registry.begin_enrolment(operator_id, operator_id, "131016", scopes, None,
                                     f"GUID-{operator_id}", None)
            registry.complete_enrolment(operator_id, b"not checked by the guard", None)
        start_session(home, station.hsm, registry, registry.operator(operator_id))
    request = str(matrix_home / "request.json")
    for (path, field), extra in FIELD_CASES.items():
        argv = [*path.split(), *(a.format(request=request) for a in extra)]
        names = {p.name for p in leaf_commands()[path].params}
        argv += (["--reader", NO_READER] if "reader" in names else []) + (
            ["--timeout", "0.1"] if "timeout" in names else [])
        before = len(registry.denials())
        code = run(matrix_home, argv, monkeypatch)
        needed = [COMMAND_SCOPES[path], FIELD_SCOPES[field][0]]
        missing = [s for s in needed if s not in scopes]
        assert (code == ExitCode.DENIED) == bool(missing), f"{path} {field} with {scopes}: {code}"
        assert len(registry.denials()) - before == (1 if missing else 0), path
        if missing:
            last = registry.denials()[-1]
            assert (last.command, last.scope) == (path, missing[0])
            assert last.operator_id == (operator_id if scopes else None)
    capsys.readouterr()


def test_logout_needs_a_session(matrix_home: Path, station,  # type: ignore[no-untyped-def]
                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 11 §11: `logout` without a valid session is denied (exit 7) and recorded;
    with any session (whatever its scopes) it ends that session."""
    home = StationHome(matrix_home)
    registry = session_holding(matrix_home, station, None, monkeypatch)
    before = len(registry.denials())
    assert run(matrix_home, ["logout"], monkeypatch) == ExitCode.DENIED
    assert len(registry.denials()) == before + 1
    last = registry.denials()[-1]
    assert (last.command, last.operator_id, last.scope) == ("logout", None, None)
    for scope in ("verify", "audit-read"):
        operator = registry.operator(f"m-{scope}")
        assert operator is not None
        start_session(home, station.hsm, registry, operator)
        assert run(matrix_home, ["logout"], monkeypatch) == ExitCode.OK
        with pytest.raises(PermissionDeniedError, match="no operator is logged in"):
            current_session(home, station.hsm, registry)
    assert len(registry.denials()) == before + 1


@pytest.mark.parametrize("scope", [None, "operator-admin"])
def test_rig_commands_are_always_denied(matrix_home: Path, station, scope: str | None,  # type: ignore[no-untyped-def]
                                        monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 11 defect 8: on a station in operator mode every rig, emulator and demo
    command is denied and recorded, with no session and with an operator-admin's."""
    registry = session_holding(matrix_home, station, scope, monkeypatch)
    argv = {"rig insert": ["--slot", "0"], "rig remove": ["--slot", "0"],
            "emulator run": ["--state", str(matrix_home / "x.json"), "--port", "1"],
            "emulator counterfeit": ["--from", str(matrix_home / "request.json"), "--to",
                                     str(matrix_home / "y.json")]}
    for path in sorted(RIG_COMMANDS):
        before = len(registry.denials())
        code = run(matrix_home, [*path.split(), *argv.get(path, [])], monkeypatch)
        assert code == ExitCode.DENIED, path
        last = registry.denials()[-1]
        assert len(registry.denials()) == before + 1
        assert (last.command, last.operator_id) == (path, f"m-{scope}" if scope else None)
        assert "test-rig command" in last.reason
    assert not (matrix_home / "x.json").exists() and not (matrix_home / "y.json").exists()
    assert not (matrix_home / "rig").exists()
    capsys.readouterr()
