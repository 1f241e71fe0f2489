"""The role × command matrix of operator mode through the station service: every
guarded command, run by the `juki` client as the unprivileged operator uid, with a
session (bound to that uid) holding each single scope, and with none. Denied ⇔ exit 7
⇔ one more denial recorded by the service, as in the in-process matrix
(test_scope_matrix.py), but over the real socket with the caller from SO_PEERCRED."""

from __future__ import annotations

import json
import pwd
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.errors import ExitCode
from tools.operators.session import end_session, start_session
from tools.registry import Registry
from tools.rig.service import OPERATOR_USER, Service, as_user, operator_file, start_service
from tools.station.scopes import ANY_SCOPE, COMMAND_SCOPES, RIG_COMMANDS, SCOPES, SESSION_FREE

from .test_scope_matrix import arguments, leaf_commands

DRIVER = """
import io, json, sys
from tools.service.client import run
codes = []
for argv in json.load(sys.stdin)["commands"]:
    out, err = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = io.StringIO()
    try:
        codes.append(run(sys.argv[1], argv))
    finally:
        sys.stdout, sys.stderr = out, err
print(json.dumps(codes))
"""


@pytest.fixture(scope="module")
def matrix_service(rig_home: Path) -> Iterator[Service]:
    service = start_service(rig_home)
    registry = Registry(service.home.registry_file)
    for scope in SCOPES:
        registry.begin_enrolment(f"m-{scope}", f"m-{scope}", "131016", frozenset({scope}), None,
                                 f"GUID-{scope}", None)
        registry.complete_enrolment(f"m-{scope}", b"not checked by the guard", None)
    registry.close()
    settings = service.home.settings()
    settings["station"]["mode"] = "operator"
    service.home.write_settings(settings)
    operator_file(service, "request.json", "{}", 0o644)
    operator_file(service, "batch.json", json.dumps({"requests": []}), 0o644)
    service.give_home_back()
    yield service
    service.stop()


def commands_as_the_operator(service: Service, commands: list[list[str]]) -> list[int]:
    """Each command line sent by one client process running as the operator uid."""
    result = subprocess.run([*as_user(OPERATOR_USER), sys.executable, "-c", DRIVER,
                             str(service.socket)], input=json.dumps({"commands": commands}),
                            capture_output=True, text=True, cwd=service.work, check=True,
                            timeout=600)
    return json.loads(result.stdout)


@pytest.mark.parametrize("scope", [None, *SCOPES])
def test_role_by_command_matrix_through_the_service(matrix_service: Service,
                                                    scope: str | None) -> None:
    service, uid = matrix_service, pwd.getpwnam(OPERATOR_USER).pw_uid
    registry = Registry(service.home.registry_file)
    end_session(service.home, registry, uid=uid)
    if scope is not None:
        operator = registry.operator(f"m-{scope}")
        assert operator is not None
        # minted here as the administrator would; the token is the service's copy of the
        # rig's, so its session MAC key is the one the service checks with
        start_session(service.home, service.home.open_token(), registry, operator, uid=uid)
    service.give_home_back()
    files = {"request": Path("request.json"), "batch": Path("batch.json")}
    paths = [p for p in sorted(leaf_commands())
             if p not in SESSION_FREE | ANY_SCOPE | RIG_COMMANDS]
    before = len(registry.denials())
    codes = commands_as_the_operator(
        service, [arguments(p, leaf_commands()[p], files) for p in paths])
    denials = registry.denials()[before:]
    registry.close()
    should_deny = [p for p in paths if scope is None or COMMAND_SCOPES[p] != scope]
    denied = [p for p, code in zip(paths, codes, strict=True) if code == ExitCode.DENIED]
    assert denied == should_deny, {p: c for p, c in zip(paths, codes, strict=True)}
    assert [d.command for d in denials] == should_deny
    assert all(d.operator_id == (f"m-{scope}" if scope else None) for d in denials)
    assert all(d.scope == COMMAND_SCOPES[d.command] for d in denials)
