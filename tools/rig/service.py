"""A station service on the test rig (tests and bench): a home of its own owned by the service user
(``juki``, 0700), a copy of the session rig's token, the real `juki station serve` as
that user, and clients run as an unprivileged operator uid (``juki-op``, member of
``juki-operators``). Users come from `.ci/station-users --test-operator` (make test).

The service's home lives outside root's private temporary directories, because the
service user must reach it; the interpreter must be runnable by both users (the venv is
made with the system Python for that reason)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tools.station.home import StationHome

ROOT = Path(__file__).resolve().parents[2]
SERVICE_USER, OPERATOR_USER, OPERATORS_GROUP = "juki", "juki-op", "juki-operators"


def as_user(user: str) -> list[str]:
    return ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups"]


def require_users() -> None:
    for user in (SERVICE_USER, OPERATOR_USER):
        try:
            pwd.getpwnam(user)
        except KeyError:
            raise AssertionError(f"user {user} is missing: run .ci/station-users --test-operator "
                                 "(make test does)") from None
    probe = subprocess.run([*as_user(OPERATOR_USER), sys.executable, "-c", "import tools"],
                           capture_output=True, text=True, cwd=ROOT, check=False)
    assert probe.returncode == 0, (f"{OPERATOR_USER} cannot run {sys.executable} on {ROOT}: "
                                   f"{probe.stderr.strip()} (make the venv with the system Python)")


def _chown_tree(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    for directory, dirs, files in os.walk(path):
        for name in [directory, *(os.path.join(directory, n) for n in dirs + files)]:
            os.chown(name, entry.pw_uid, entry.pw_gid)


def make_service_home(rig_home: Path, base: Path) -> StationHome:
    """A home owned by the service user with a private copy of the rig's token."""
    home = StationHome(base / "home")
    home.ensure()
    shutil.copytree(rig_home / "softhsm" / "tokens", home.softhsm_dir / "tokens")
    shutil.copy2(rig_home / "secrets" / "token.pin", home.secrets_dir / "token.pin")
    os.chmod(home.softhsm_dir, 0o700)
    (home.softhsm_dir / "softhsm2.conf").write_text(
        f"directories.tokendir = {home.softhsm_dir / 'tokens'}\nobjectstore.backend = file\n"
        "log.level = ERROR\nslots.removable = false\n")
    os.chmod(home.softhsm_dir / "softhsm2.conf", 0o600)
    hsm = dict(StationHome(rig_home).settings()["hsm"])
    hsm |= {"pin_file": "secrets/token.pin", "softhsm2_conf": "softhsm/softhsm2.conf"}
    home.write_settings({"hsm": hsm, "station": {"id": f"service-{base.name}"}})
    _chown_tree(home.root, SERVICE_USER)
    return home


@dataclass
class Service:
    base: Path
    home: StationHome
    socket: Path
    process: subprocess.Popen[str]
    work: Path  # the operator's own directory (pin files, documents, outputs)

    def client(self, *args: str, user: str = OPERATOR_USER, input: str | None = None,
               check: int | None = 0, env: dict[str, str] | None = None,
               ) -> subprocess.CompletedProcess[str]:
        """`juki ARGS` as ``user`` would type it, sent to the service."""
        environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
                       "JUKI_SOCKET": str(self.socket)} | (env or {})
        prefix = [] if user == "root" else as_user(user)
        result = subprocess.run([*prefix, sys.executable, "-m", "tools", *args], cwd=self.work,
                                capture_output=True, text=True, input=input, env=environment,
                                check=False, timeout=120)
        if check is not None and result.returncode != check:
            raise AssertionError(f"juki {' '.join(args)} as {user} exited {result.returncode} "
                                 f"(expected {check})\nstdout: {result.stdout}\n"
                                 f"stderr: {result.stderr}")
        return result

    def give_home_back(self) -> None:
        """After root (a test standing for the administrator) wrote in the home: every
        file the service's again (root's new files would be unreadable to the service)."""
        _chown_tree(self.home.root, SERVICE_USER)

    def stop(self) -> str:
        """Stop the service, remove its home; its log."""
        self.process.terminate()
        try:
            _, log = self.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, log = self.process.communicate()
        shutil.rmtree(self.base, ignore_errors=True)
        return log


def start_service(rig_home: Path) -> Service:
    require_users()
    base = Path(tempfile.mkdtemp(prefix="juki-service-"))
    os.chmod(base, 0o755)
    home = make_service_home(rig_home, base)
    run = base / "run"
    run.mkdir(mode=0o750)
    os.chown(run, pwd.getpwnam(SERVICE_USER).pw_uid, _gid(OPERATORS_GROUP))
    os.chmod(run, 0o2750)
    work = base / "work"
    work.mkdir(mode=0o700)
    _chown_tree(work, OPERATOR_USER)
    socket = run / "juki.sock"
    process = subprocess.Popen(
        [*as_user(SERVICE_USER), sys.executable, "-m", "tools", "--home", str(home.root),
         "station", "serve", "--socket", str(socket), "--group", OPERATORS_GROUP],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"})
    deadline = time.monotonic() + 15
    while not socket.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"the station service did not start: {process.communicate()[1]}")
        time.sleep(0.05)
    return Service(base, home, socket, process, work)


def _gid(group: str) -> int:
    import grp

    return grp.getgrnam(group).gr_gid


def operator_file(service: Service, name: str, text: str, mode: int = 0o600) -> Path:
    """A file of the operator's own (a PIN file, a request), in their directory."""
    path = service.work / name
    path.write_text(text, encoding="utf-8")
    os.chmod(path, mode)
    entry = pwd.getpwnam(OPERATOR_USER)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    return path
