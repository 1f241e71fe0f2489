"""The local test rig: a SoftHSM token, pcscd with the vpcd driver, emulated cards.

``up`` starts only what is not running and records every PID it started in
``rig/state.json``; ``down`` stops exactly those PIDs. As root, pcscd runs in a
private network namespace (only loopback), so vpcd's listening ports — which bind
all interfaces — are unreachable from other hosts; emulated cards join that
namespace. pcsc-lite 1.9 has one fixed socket per machine, so one rig per machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from cardlib.atomic_file import write_atomically
from cardlib.emulator.vpcd import FIRST_VPCD_PORT
from hsm.keys import ensure_secret_keys
from hsm.rig_mark import is_test_token, mark_test_token
from hsm.roles import CARD_MASTER_ROLES, KeyRole
from hsm.softhsm_files import backup_token_files
from hsm.token import Hsm

from ..errors import RigError
from ..station.home import StationHome
from ..station.processes import pid_alive
from .card_maker import card_kind, manufacture
from .softhsm_token import init_token

PCSCD_SOCKET = Path("/run/pcscd/pcscd.comm")
PCSCD_PIDFILE = Path("/run/pcscd/pcscd.pid")
VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
SLOTS_PER_VPCD = 2
MAX_READERS = 16
START_TIMEOUT_S = 10.0


@dataclass
class CardSlot:
    slot: int
    port: int
    state: str
    pid: int | None

    def as_json(self) -> dict[str, object]:
        return {"slot": self.slot, "reader": reader_name(self.slot), "port": self.port,
                "state": self.state, "pid": self.pid, "running": pid_alive(self.pid)}


def friendly_name(entry: int) -> str:
    return "Virtual PCD" if entry == 0 else f"Virtual PCD {entry}"


def reader_name(slot: int) -> str:
    """The PC/SC name pcscd gives the virtual reader of rig ``slot``."""
    entry, index = divmod(slot, SLOTS_PER_VPCD)
    return f"{friendly_name(entry)} 00 {index:02X}"


def _stop(pid: int | None, timeout: float = 5.0) -> None:
    if not pid_alive(pid):
        return
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.02)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
    _reap(pid)


def _spawn(command: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start a rig process in its own session, output appended to ``log_path``."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def refuse_operator_mode(home: StationHome) -> None:
    """The rig never touches a station home in operator mode (issue 11: rig and
    production are separate; a rig has a home and a test token of its own)."""
    if home.mode() == "operator":
        raise RigError(f"{home.root} is a station home in operator mode: the test rig never "
                       "touches it (a rig has its own home and test token)")


class Rig:
    def __init__(self, home: StationHome) -> None:
        refuse_operator_mode(home)
        self.home = home
        self.state_file = home.rig_dir / "state.json"
        self._hsm: Hsm | None = None

    @property
    def hsm(self) -> Hsm:
        """The rig's test token (made and marked by ``ensure_token``); the rig plays
        card maker with it, which only a marked test token allows."""
        if self._hsm is None:
            self._hsm = self.home.open_token()
        return self._hsm

    # ---- persisted rig state -----------------------------------------------------

    def _load(self) -> dict:
        if not self.state_file.exists():
            return {}
        return json.loads(self.state_file.read_text())

    def _save(self, state: dict) -> None:
        write_atomically(self.state_file, json.dumps(state, indent=1))

    # ---- SoftHSM ---------------------------------------------------------------------

    def _refuse_foreign_token(self, hsm: dict[str, str]) -> None:
        """The rig makes, marks and uses only a SoftHSM token of its own home: a home whose
        [hsm] names another module, PIN file or SoftHSM configuration, or an environment
        that overrides them, is a station's, not a rig's."""
        defaults = self.home.default_hsm_settings()
        foreign = sorted(k for k in ("module", "pin_file", "softhsm2_conf")
                         if k in hsm and hsm[k] != defaults[k])
        foreign += sorted(v for v in ("PKCS11_MODULE", "PKCS11_TOKEN_LABEL", "PKCS11_PIN_FILE")
                          if os.environ.get(v))
        if foreign:
            raise RigError(f"{self.home.root} names a token the rig did not make "
                           f"({', '.join(foreign)}): a rig runs on a home and test token of "
                           "its own (a new --home)")

    def ensure_token(self) -> bool:
        """Create the SoftHSM config, PINs and token if absent; True if created."""
        self.home.ensure()
        settings = self.home.settings()
        hsm = settings.setdefault("hsm", {})
        self._refuse_foreign_token(hsm)
        for key, value in self.home.default_hsm_settings().items():
            hsm.setdefault(key, value)
        self.home.write_settings(settings)
        conf = self.home.softhsm_dir / "softhsm2.conf"
        tokens = self.home.softhsm_dir / "tokens"
        self.home.softhsm_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        tokens.mkdir(exist_ok=True, mode=0o700)
        write_atomically(conf, f"directories.tokendir = {tokens}\nobjectstore.backend = file\n"
                               "log.level = ERROR\nslots.removable = false\n")
        pin_file = self.home.secrets_dir / "token.pin"
        so_pin_file = self.home.secrets_dir / "token.so-pin"
        for path in (pin_file, so_pin_file):
            if not path.exists():
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as handle:
                    handle.write(os.urandom(12).hex() + "\n")
        if any(tokens.iterdir()):
            backup_token_files(tokens)  # a home made before the copies were kept
            return False
        init_token(conf, hsm["token_label"], so_pin_file.read_text().strip(),
                   pin_file.read_text().strip())
        backup_token_files(tokens)
        return True

    def token_settings(self) -> dict[str, str]:
        """The ``[hsm]`` settings by which a test station's config names this rig's test
        token (absolute paths), as a production station's config names its HSM."""
        hsm = self.home.settings().get("hsm", {})
        return {key: str(self.home.root / value) if key in ("pin_file", "softhsm2_conf")
                else value for key, value in hsm.items()}

    # ---- pcscd -------------------------------------------------------------------------

    def _write_reader_conf(self, readers: int, base_port: int) -> Path:
        """One vpcd entry per two readers. vpcd keeps its channels in globals indexed
        by slot, so a second entry sharing the same .so would overwrite the first's;
        each further entry therefore loads its own copy of the driver."""
        conf_dir = self.home.rig_dir / "reader.conf.d"
        drivers = self.home.rig_dir / "drivers"
        for stale in (conf_dir, drivers):
            if stale.exists():
                shutil.rmtree(stale)
        conf_dir.mkdir(parents=True)
        drivers.mkdir()
        entries = []
        for index in range((readers + SLOTS_PER_VPCD - 1) // SLOTS_PER_VPCD):
            port = base_port + index * SLOTS_PER_VPCD
            driver = VPCD_DRIVER
            if index:
                driver = drivers / f"libifdvpcd-{index}.so"
                shutil.copyfile(VPCD_DRIVER, driver)
            entries.append(
                f'FRIENDLYNAME "{friendly_name(index)}"\nDEVICENAME /dev/null:{port}\n'
                f"LIBPATH {driver}\nCHANNELID {port}\n"
            )
        (conf_dir / "vpcd").write_text("\n".join(entries))
        return conf_dir

    @staticmethod
    def _running_pcscd() -> int | None:
        """PID of a live pcscd per its pid file (which pcscd ends with a NUL byte)."""
        if not PCSCD_PIDFILE.exists():
            return None
        text = PCSCD_PIDFILE.read_bytes().rstrip(b"\0\n ").decode(errors="replace")
        pid = int(text) if text.isdigit() else None
        return pid if pid and pid_alive(pid) else None

    def _start_pcscd(self, readers: int, base_port: int) -> tuple[int, bool]:
        if not VPCD_DRIVER.exists():
            raise RigError(f"vpcd driver {VPCD_DRIVER} missing: install vsmartcard-vpcd")
        if not shutil.which("pcscd"):
            raise RigError("pcscd not found: install pcscd")
        foreign = self._running_pcscd()
        if foreign:
            raise RigError(f"a pcscd not started by this rig is running (pid {foreign}); "
                           "stop it first (one pcscd per machine)")
        for stale in (PCSCD_SOCKET, PCSCD_PIDFILE):
            stale.unlink(missing_ok=True)
        conf_dir = self._write_reader_conf(readers, base_port)
        isolated = os.geteuid() == 0 and bool(shutil.which("unshare")) and bool(shutil.which("ip"))
        command = ["pcscd", "--foreground", "--config", str(conf_dir)]
        if isolated:
            command = ["unshare", "--net", "--", "sh", "-c",
                       'ip link set lo up && exec "$@"', "sh", *command]
        process = _spawn(command, self.home.rig_dir / "pcscd.log")
        deadline = time.monotonic() + START_TIMEOUT_S
        while not PCSCD_SOCKET.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RigError(f"pcscd did not start; see {self.home.rig_dir / 'pcscd.log'}")
            time.sleep(0.02)
        return process.pid, isolated

    # ---- cards -------------------------------------------------------------------------

    def _start_card(self, state: dict, slot: int, state_path: Path, kind: str | None = None) -> int:
        port = state["base_port"] + slot
        kind = card_kind(state_path, kind)
        if not state_path.exists():
            manufacture(kind, self.hsm, state_path)
        command = [sys.executable, "-m", "cardlib.emulator", "--state", str(state_path),
                   "--port", str(port)]
        if state.get("isolated"):
            command += ["--netns", f"/proc/{state['pcscd_pid']}/ns/net"]
        return _spawn(command, self.home.rig_dir / f"card-{slot:02d}.log").pid

    def insert_card(self, slot: int, state_path: Path | None = None,
                    kind: str | None = None) -> CardSlot:
        """Put a card (its state file; a new blank ``kind`` card if absent) into ``slot``.
        Without a state file the slot's own card of that kind is used (``card-NN.json``
        resident, ``operator-NN.json`` operator); a state file holding a card of another
        kind than ``kind`` is refused before anything is pulled out."""
        state = self._require_running()
        if not 0 <= slot < state["readers"]:
            raise RigError(f"slot {slot} out of range 0..{state['readers'] - 1}")
        prefix = "operator" if kind == "operator" else "card"
        path = state_path or self.home.cards_dir / f"{prefix}-{slot:02d}.json"
        card_kind(path, kind)
        self.remove_card(slot)
        pid = self._start_card(state, slot, path, kind)
        state["cards"][str(slot)] = {"pid": pid, "state": str(path)}
        self._save(state)
        self.wait_present([slot])
        return CardSlot(slot, state["base_port"] + slot, str(path), pid)

    def wait_present(self, slots: list[int], timeout: float = START_TIMEOUT_S) -> None:
        """Block until pcscd reports a card in each of ``slots``' readers."""
        for slot in slots:
            self._wait_for(reader_name(slot), present=True, timeout=timeout)

    def _wait_for(self, reader: str, *, present: bool, timeout: float = START_TIMEOUT_S) -> None:
        from cardlib.pcsc import reader_states

        deadline = time.monotonic() + timeout
        while True:
            states = {s.name: s.card_present for s in reader_states()}
            if states.get(reader, False) == present:
                return
            if time.monotonic() > deadline:
                what = "detected" if present else "seen removed"
                raise RigError(f"card in {reader} not {what} after {timeout:g} s; "
                               f"see {self.home.rig_dir}/card-*.log")
            time.sleep(0.05)

    def remove_card(self, slot: int) -> None:
        """Pull the card out (its emulator disconnects) and wait until pcscd notices."""
        state = self._require_running()
        card = state["cards"].pop(str(slot), None)
        if card:
            _stop(card["pid"])
            self._save(state)
            self._wait_for(reader_name(slot), present=False)

    def _require_running(self) -> dict:
        state = self._load()
        if not state or not pid_alive(state.get("pcscd_pid")):
            raise RigError("the rig is not up: run `juki rig up`")
        return state

    # ---- public operations -----------------------------------------------------------

    def up(self, blank: int, base_port: int = FIRST_VPCD_PORT) -> dict:
        if not 0 <= blank <= MAX_READERS:
            raise RigError(f"--blank must be 0..{MAX_READERS}")
        if self.ensure_token():
            mark_test_token(self.hsm)  # the card maker's export works on this token only
        elif not is_test_token(self.hsm):
            raise RigError(f"the token of {self.home.root} is not a test rig's token: the rig "
                           "runs only on a home and token of its own (a new --home)")
        # Blank cards are born with keys derived from these masters.
        ensure_secret_keys(self.hsm, (*CARD_MASTER_ROLES, KeyRole.OPERATOR_CARD_MANAGEMENT))
        self.home.rig_dir.mkdir(parents=True, exist_ok=True)
        state = self._load()
        if not state or not pid_alive(state.get("pcscd_pid")):
            readers = max(SLOTS_PER_VPCD, blank + blank % SLOTS_PER_VPCD)
            pid, isolated = self._start_pcscd(readers, base_port)
            state = {"pcscd_pid": pid, "isolated": isolated, "base_port": base_port,
                     "readers": readers, "cards": {}}
            self._save(state)
        for slot in range(blank):
            card = state["cards"].get(str(slot))
            if card and pid_alive(card["pid"]):
                continue
            path = self.home.cards_dir / f"card-{slot:02d}.json"
            state["cards"][str(slot)] = {"pid": self._start_card(state, slot, path),
                                         "state": str(path)}
            self._save(state)
        self.wait_present(list(range(blank)))
        return self.status()

    def status(self) -> dict:
        state = self._load()
        running = bool(state) and pid_alive(state.get("pcscd_pid"))
        cards = [
            CardSlot(int(slot), state["base_port"] + int(slot), info["state"], info["pid"]).as_json()
            for slot, info in sorted(state.get("cards", {}).items(), key=lambda i: int(i[0]))
        ] if state else []
        return {
            "home": str(self.home.root),
            "pcscd": {"running": running, "pid": state.get("pcscd_pid") if state else None,
                      "isolated_network": bool(state.get("isolated")) if state else False},
            "readers": state.get("readers", 0) if state else 0,
            "base_port": state.get("base_port") if state else None,
            "cards": cards,
            "token_initialised": (self.home.softhsm_dir / "tokens").exists()
            and any((self.home.softhsm_dir / "tokens").iterdir()),
        }

    def down(self) -> dict:
        state = self._load()
        stopped = []
        for info in state.get("cards", {}).values():
            if pid_alive(info["pid"]):
                stopped.append(info["pid"])
            _stop(info["pid"])
        if state.get("pcscd_pid"):
            if pid_alive(state["pcscd_pid"]):
                stopped.append(state["pcscd_pid"])
            _stop(state["pcscd_pid"])
        self.state_file.unlink(missing_ok=True)
        return {"stopped_pids": stopped}
