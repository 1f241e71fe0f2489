"""The station service end to end: `juki station serve` as the service user, the `juki`
client as an unprivileged operator uid, over the real socket, pcscd and SoftHSM.

What an operator's account can and cannot do: run commands through the service (issue,
verify, read, login), never read the token PIN or the registry, never choose the
station (--home, --db, environment), never borrow another uid's session, never ask for a
PAM authentication; and the service refuses to run on a home others could change."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tools.registry import Registry, new_record_code
from tools.rig.service import OPERATOR_USER, Service, as_user, operator_file, start_service

from ..conftest import ROOT, juki
from ..operator_helpers import ADMIN_PIN, ADMIN_PUK, READER, insert_operator_card

FIXTURE = ROOT / "fixtures" / "requests" / "resident-suzuki.json"
CARD_PINS = "card_info=7319\njpki_auth=2468\njpki_sign=SIGN2026\n"


def issue_through(service: Service, rig_home: Path, tmp_path: Path) -> str:
    """A blank card in slot 0, issued by the operator uid through the service."""
    juki(rig_home, "rig", "insert", "--slot", "0", "--state", str(tmp_path / "card.json"))
    request = json.loads(FIXTURE.read_text(encoding="utf-8")) | {"resident_code": new_record_code()}
    operator_file(service, "request.json", json.dumps(request, ensure_ascii=False), 0o644)
    operator_file(service, "pins.txt", CARD_PINS)
    issued = json.loads(service.client("issue", "resident", "request.json", "--reader", READER,
                                       "--pin-file", "pins.txt", "--json").stdout)
    return str(issued["card_serial"])


def test_an_operator_uid_works_through_the_service(service: Service, rig_home: Path,
                                                   tmp_path: Path) -> None:
    serial = issue_through(service, rig_home, tmp_path)
    verdict = json.loads(service.client("verify", "--reader", READER, "--pin-file", "pins.txt",
                                        "--json").stdout)  # the credential relayed from the client
    assert verdict["genuine"] and verdict["card_serial"] == serial and verdict["ours"]
    read = json.loads(service.client("card", "read", "--recipient", "NENKIN", "--purpose", "B1-57",
                                     "--reader", READER, "--json", input="7319\n").stdout)
    assert read["name"] and read["provision_entry"] >= 0
    document = operator_file(service, "letter.txt", "申請書\n", 0o644)
    service.client("card", "sign", "letter.txt", "--key", "auth", "--reader", READER,
                   "--pin-file", "pins.txt")
    signature = document.with_name("letter.txt.p7s")
    assert signature.stat().st_uid == os.stat(service.work).st_uid  # written by the client
    assert signature.read_bytes()[:2] == b"\x30\x82"  # a DER SignedData


def test_the_operator_uid_cannot_reach_the_station_secrets(service: Service) -> None:
    for secret in (service.home.secrets_dir / "token.pin", service.home.registry_file,
                   service.home.config_file):
        result = subprocess.run([*as_user(OPERATOR_USER), "cat", str(secret)],
                                capture_output=True, check=False)
        assert result.returncode != 0 and b"Permission denied" in result.stderr
    local = service.client("--home", str(service.home.root), "verify", check=None,
                           env={"JUKI_SOCKET": "none"})  # the same command, run locally
    assert local.returncode != 0 and "GENUINE" not in local.stdout
    probe = subprocess.run(
        [*as_user(OPERATOR_USER), sys.executable, "-c",
         f"import sqlite3; sqlite3.connect('file:{service.home.registry_file}?mode=ro', uri=True)"
         ".execute('select 1')"], capture_output=True, text=True, check=False)
    assert probe.returncode != 0 and "unable to open" in probe.stderr


@pytest.mark.parametrize("argv", [["--home", "/tmp", "verify"], ["--db", "fake.sqlite", "verify"],
                                  ["--db=postgresql://elsewhere/x", "whoami"]])
def test_the_client_cannot_choose_the_station(service: Service, argv: list[str]) -> None:
    result = service.client(*argv, check=2)
    assert "is the station service's to choose" in result.stderr and "GENUINE" not in result.stdout


def test_the_client_environment_does_not_pick_the_registry(service: Service, tmp_path: Path) -> None:
    fake = service.work / "fake.sqlite"
    sqlite3.connect(fake).close()
    os.chown(fake, os.stat(service.work).st_uid, -1)
    service.client("card", "list", env={"JUKI_DB": str(fake), "JUKI_HOME": "/tmp",
                                        "PKCS11_MODULE": "/tmp/evil.so"})
    assert fake.stat().st_size == 0  # the service never opened the client's database


def enrol_admin(service: Service, rig_home: Path, tmp_path: Path, operator_id: str,
                scopes: str) -> Path:
    """An operator enrolled through the service on a new PIV card in the reader (PIN and
    PUK from the operator's own file); the card's state file."""
    card = tmp_path / f"{operator_id}.json"
    insert_operator_card(rig_home, card)
    operator_file(service, "op-pins.txt", f"operator_pin={ADMIN_PIN}\noperator_puk={ADMIN_PUK}\n")
    service.client("operator", "enroll", "--id", operator_id, "--name", f"Name of {operator_id}",
                   "--municipality", "131016", "--scopes", scopes, "--reader", READER,
                   "--pin-file", "op-pins.txt")
    return card


def test_sessions_belong_to_the_uid_that_logged_in(rig_home: Path, tmp_path: Path) -> None:
    """On a service of its own: once an operator-admin exists the station is in operator
    mode for good (its config is not root's), which the other tests must not inherit."""
    service = start_service(rig_home)
    try:
        card = enrol_admin(service, rig_home, tmp_path, "svc-admin", "operator-admin,verify")
        assert json.loads(service.client("station", "status", "--json").stdout)["mode"] == "operator"
        service.client("whoami", check=7)
        service.client("operator", "list", check=7)  # no session: denied
        insert_operator_card(rig_home, card)
        service.client("login", "--reader", READER, input=f"{ADMIN_PIN}\n")
        mine = json.loads(service.client("whoami", "--json").stdout)
        assert mine["operator_id"] == "svc-admin" and mine["uid"] == os.stat(service.work).st_uid
        other = service.client("whoami", user="root", check=7)  # another uid: no session
        assert "no operator is logged in" in other.stderr
        service.client("verify", "--reader", READER, user="root", check=7)
        reopened = service.client("station", "mode", "open", check=7)  # only root's word opens it
        assert "needs root's word" in reopened.stderr
        service.client("logout")
        service.client("whoami", check=7)
        service.client("logout", check=7)  # no session left to end: a recorded denial
    finally:
        service.stop()


def test_only_root_may_ask_for_a_pam_authentication(service: Service) -> None:
    result = service.client("pam-auth", input=f"{ADMIN_PIN}\0", env={"PAM_USER": "root"}, check=7)
    assert "only root (the PAM stack)" in result.stderr


def test_the_service_refuses_a_home_others_can_change(rig_home: Path, tmp_path: Path) -> None:
    home = tmp_path / "unsafe"
    home.mkdir(mode=0o700)
    (home / "config.toml").write_text('[station]\nid = "unsafe"\n')
    os.chmod(home / "config.toml", 0o666)
    result = juki(home, "station", "serve", "--socket", str(tmp_path / "s.sock"), check=5)
    assert "config.toml is open to group or others" in result.stderr
    assert not (tmp_path / "s.sock").exists()


def test_the_service_refuses_a_module_anyone_can_replace(rig_home: Path, tmp_path: Path) -> None:
    home = tmp_path / "module"
    home.mkdir(mode=0o700)
    module = Path("/tmp") / f"juki-evil-{os.getpid()}.so"
    module.write_bytes(b"")
    try:
        (home / "config.toml").write_text(
            f'[hsm]\nmodule = "{module}"\ntoken_label = "x"\npin_file = "secrets/none"\n')
        os.chmod(home / "config.toml", 0o600)
        result = juki(home, "station", "serve", "--socket", str(tmp_path / "s.sock"), check=5)
        assert "/tmp is writable by group or others" in result.stderr
    finally:
        module.unlink()


def test_a_home_open_to_others_is_closed_before_the_registry_is_used() -> None:
    base = Path(tempfile.mkdtemp(prefix="juki-open-home-"))
    try:
        os.chmod(base, 0o755)  # others can reach what is inside, if its modes let them
        home = base / "home"
        home.mkdir()
        os.chmod(home, 0o755)  # as a pre-existing home made with the default umask
        juki(home, "card", "list", env={"JUKI_DB": ""})  # opens (creates) its own registry
        assert home.stat().st_mode & 0o077 == 0
        probe = subprocess.run([*as_user(OPERATOR_USER), "cat", str(home / "registry.sqlite")],
                               capture_output=True, check=False)
        assert probe.returncode != 0 and b"Permission denied" in probe.stderr
    finally:
        shutil.rmtree(base)


def test_pamtester_authenticates_through_the_service(service: Service, rig_home: Path,
                                                     tmp_path: Path) -> None:
    """pam_exec runs the client as root with no --home: the hook reads no configuration,
    loads no module and opens no registry of its own; the service decides."""
    assert shutil.which("pamtester"), "pamtester is not installed (make deps)"
    card = tmp_path / "pam-card.json"
    insert_operator_card(rig_home, card)
    operator_file(service, "pam-pins.txt", "operator_pin=818181\noperator_puk=24682468\n")
    service.client("operator", "enroll", "--id", "svc-pam", "--name", "PAM Operator",
                   "--municipality", "131016", "--scopes", "verify", "--unix-user", OPERATOR_USER,
                   "--reader", READER, "--pin-file", "pam-pins.txt")
    juki_script = Path(sys.executable).parent / "juki"
    name = f"juki-service-test-{os.getpid()}"
    pam_file = Path("/etc/pam.d") / name
    pam_file.write_text(f"auth required pam_exec.so expose_authtok quiet /usr/bin/env "
                        f"JUKI_SOCKET={service.socket} {juki_script} pam-auth --reader 0 "
                        "--timeout 1\naccount required pam_permit.so\n")
    try:
        def pamtester(user: str, pin: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(["pamtester", name, user, "authenticate"], input=pin + "\n",
                                  capture_output=True, text=True, timeout=60, check=False)

        ok = pamtester(OPERATOR_USER, "818181")
        assert ok.returncode == 0 and "successfully authenticated" in ok.stdout + ok.stderr
        assert pamtester(OPERATOR_USER, "000000").returncode != 0  # wrong PIN
        assert pamtester("root", "818181").returncode != 0  # root is mapped to no operator
    finally:
        pam_file.unlink()


def test_the_pam_hook_run_as_root_refuses_a_home_an_operator_can_write(tmp_path: Path) -> None:
    """The attack of issue 11 defect 1: an operator who can write the home points its
    [hsm] module at code of their own; the hook, run by root, must not load it."""
    home = tmp_path / "station"
    home.mkdir(mode=0o700)
    evil = Path("/tmp") / f"juki-operator-module-{os.getpid()}.so"
    evil.write_bytes(b"\x7fELF not really")
    try:
        config = home / "config.toml"
        config.write_text(f'[hsm]\nmodule = "{evil}"\ntoken_label = "juki-station"\n'
                          'pin_file = "secrets/token.pin"\n')
        os.chmod(config, 0o600)
        os.chown(config, pwd.getpwnam(OPERATOR_USER).pw_uid, -1)  # an operator can write it
        result = juki(home, "pam-auth", input="135792\0", env={"PAM_USER": "root"}, check=5)
        assert "will not use this station home" in result.stderr
        assert "config.toml is owned by uid" in result.stderr and str(evil.parent) in result.stderr
    finally:
        evil.unlink()



# ---- from the security review of the service (each an attack that now fails) ----------

def test_a_home_under_a_directory_an_operator_owns_is_refused(tmp_path: Path) -> None:
    """The home swap: whoever can rename the home's parent can put a home of their own
    in its place after the service started; so the parent must be trusted too."""
    parent = tmp_path / "operator-dir"
    parent.mkdir()
    os.chown(parent, pwd.getpwnam(OPERATOR_USER).pw_uid, -1)
    home = parent / "home"
    home.mkdir(mode=0o700)
    result = juki(home, "station", "serve", "--socket", str(tmp_path / "s.sock"), check=5)
    assert f"{parent} is owned by uid" in result.stderr
    assert not (tmp_path / "s.sock").exists()


def test_paths_the_configuration_names_outside_the_home_are_checked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tools.service.home_check import home_problems
    from tools.station.home import StationHome

    monkeypatch.delenv("JUKI_DB", raising=False)  # the configured registry, not the suite's

    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    (shared / "registry.sqlite").touch()
    (shared / "recipients.toml").touch()
    home = StationHome(tmp_path / "home")
    home.ensure()
    home.write_settings({"registry": {"url": str(shared / "registry.sqlite")},
                         "audit": {"recipients_file": str(shared / "recipients.toml")}})
    problems = "\n".join(home_problems(home, 0))
    assert f"{shared} is writable by group or others" in problems
    assert "registry.sqlite is open to group or others" in problems


def test_root_running_juki_locally_does_not_load_what_the_service_user_configured(
        service: Service) -> None:
    """The service user (or anyone owning the home) must not make root load a module:
    root refuses a home it does not own, before any module is loaded."""
    result = juki(service.home.root, "hsm", "status", check=5, env={"JUKI_SOCKET": "none"})
    assert "running as root, juki will not use this station home" in result.stderr
    assert "is owned by uid" in result.stderr and "token juki-station" not in result.stdout


def test_operator_mode_does_not_fall_open_when_the_last_admin_is_suspended(
        rig_home: Path, tmp_path: Path) -> None:
    service = start_service(rig_home)
    try:
        enrol_admin(service, rig_home, tmp_path, "only-admin", "operator-admin")
        service.client("operator", "list", check=7)  # operator mode: written to the config
        registry = Registry(service.home.registry_file)
        registry.set_operator_status("only-admin", "suspended", "review", None)
        registry.close()
        service.give_home_back()
        service.client("operator", "list", check=7)  # still operator mode
        denied = service.client("operator", "enroll", "--id", "x", "--name", "X", "--municipality",
                                "131016", "--scopes", "operator-admin", "--unix-user", "root",
                                "--reader", READER, "--pin-file", "op-pins.txt", check=None)
        assert denied.returncode in (2, 7)
    finally:
        service.stop()


def test_enrolment_never_maps_an_operator_to_root() -> None:
    from tools.errors import RequestError
    from tools.operators.enrolment import ALGORITHMS, EnrolmentRequest

    with pytest.raises(RequestError, match="superuser"):
        EnrolmentRequest("op-x", "X", "131016", frozenset({"verify"}), "root", ALGORITHMS["p256"])


def test_idle_connections_do_not_hold_the_service(service: Service) -> None:
    import socket as sockets
    import time

    idle = []
    for _ in range(6):  # more than the workers
        connection = sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM)
        connection.connect(str(service.socket))
        idle.append(connection)
    try:
        start = time.monotonic()
        service.client("station", "status")
        assert time.monotonic() - start < 30  # the silent ones were dropped after 10 s
    finally:
        for connection in idle:
            connection.close()
