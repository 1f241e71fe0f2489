"""The station home: configuration, token, registry and rig state in one directory.

Selected by ``--home``, else ``JUKI_HOME``, else ``~/.local/share/juki``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path

from cardlib.atomic_file import write_atomically
from hsm.config import SOFTHSM_MODULE, TokenConfig
from hsm.token import Hsm, open_token

from ..errors import StationConfigError

log = logging.getLogger(__name__)

DEFAULT_HOME = Path("~/.local/share/juki")
DEFAULT_TOKEN_LABEL = "juki-station"
MODES = ("open", "operator")


@dataclass(frozen=True)
class OperatorPolicy:
    """``[operator]`` settings: lock-out after failed logins, session lifetime."""

    max_failed_logins: int = 5
    failed_login_window: dt.timedelta = dt.timedelta(minutes=15)
    session_lifetime: dt.timedelta = dt.timedelta(hours=8)


def softhsm_token_dir(conf: Path) -> Path:
    """``directories.tokendir`` of a SoftHSM configuration file."""
    for line in conf.read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "directories.tokendir":
            return Path(value.strip())
    raise StationConfigError(f"{conf} names no directories.tokendir")


def _prove_repair(hsm: Hsm, tokens: Path, repaired: list[str]) -> None:
    import pkcs11

    from hsm.errors import HsmError
    from hsm.softhsm_files import undo_repair

    hsm.reset()
    try:
        hsm.call(lambda session: None)  # logs in with the station PIN
    except HsmError as exc:
        if not isinstance(exc.__cause__, pkcs11.PinIncorrect):
            raise
        undo_repair(tokens, repaired)
        raise HsmError(f"SoftHSM token.object of {', '.join(repaired)} was left empty by a "
                       "killed process and its copy predates a PIN change (the station PIN "
                       "does not open it); not restored: restore the token from a backup") \
            from None


def resolve_home(option: str | None) -> Path:
    raw = option or os.environ.get("JUKI_HOME") or str(DEFAULT_HOME)
    return Path(raw).expanduser().resolve()


@dataclass(frozen=True)
class StationHome:
    root: Path

    @property
    def config_file(self) -> Path:
        return self.root / "config.toml"

    @property
    def registry_file(self) -> Path:
        return self.root / "registry.sqlite"

    @property
    def secrets_dir(self) -> Path:
        return self.root / "secrets"

    @property
    def softhsm_dir(self) -> Path:
        return self.root / "softhsm"

    @property
    def rig_dir(self) -> Path:
        return self.root / "rig"

    @property
    def cards_dir(self) -> Path:
        return self.root / "cards"

    def configured_mode(self) -> str | None:
        """``[station] mode`` as written: ``open``, ``operator`` or None (not set). What a
        station is in also depends on who wrote it and on its operators:
        ``tools.service.context.Station.mode``."""
        mode = self.settings().get("station", {}).get("mode")
        if mode is not None and mode not in MODES:
            raise StationConfigError(f"{self.config_file}: [station] mode must be one of {MODES}")
        return None if mode is None else str(mode)

    def mode(self) -> str:
        """The configured mode, ``open`` when not set (the rig's view of a home)."""
        return self.configured_mode() or "open"

    def open_by_root(self) -> bool:
        """``mode = "open"`` in a config file that root owns: the one way to keep a station
        open once it has an operator-admin (issue 11)."""
        if self.configured_mode() != "open":
            return False
        info = self.config_file.lstat()
        return info.st_uid == 0 and stat.S_ISREG(info.st_mode)

    def station_id(self) -> str:
        """``[station] id``, else host name and home directory."""
        configured = self.settings().get("station", {}).get("id")
        return str(configured) if configured else f"{socket.gethostname()}:{self.root}"

    def operator_policy(self) -> OperatorPolicy:
        raw = self.settings().get("operator", {})
        try:
            policy = OperatorPolicy(
                max_failed_logins=int(raw.get("max_failed_logins", 5)),
                failed_login_window=dt.timedelta(minutes=float(raw.get("failed_login_window_minutes", 15))),
                session_lifetime=dt.timedelta(minutes=float(raw.get("session_minutes", 480))),
            )
        except (TypeError, ValueError) as exc:
            raise StationConfigError(f"{self.config_file}: [operator] {exc}") from None
        if policy.max_failed_logins < 1 or policy.session_lifetime <= dt.timedelta(0):
            raise StationConfigError(f"{self.config_file}: [operator] limits must be positive")
        return policy

    def registry_target(self) -> Path | str:
        """``JUKI_DB``, else ``[registry] url`` in the config, else the SQLite file here."""
        url = os.environ.get("JUKI_DB") or self.settings().get("registry", {}).get("url")
        return url or self.registry_file

    def ensure(self) -> None:
        """The home and its secrets directory, private: created 0700, and a home of ours
        that others may enter is closed (its registry holds identity data)."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.secrets_dir.mkdir(exist_ok=True, mode=0o700)
        for directory in (self.root, self.secrets_dir):
            info = directory.stat()
            if info.st_mode & 0o077 and info.st_uid == os.getuid():
                log.warning("%s was open to group or others (mode %04o): closed to 0700",
                            directory, stat.S_IMODE(info.st_mode))
                directory.chmod(0o700)

    def settings(self) -> dict[str, dict[str, str]]:
        if not self.config_file.exists():
            return {}
        try:
            return tomllib.loads(self.config_file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise StationConfigError(f"{self.config_file}: {exc}") from exc

    def write_settings(self, settings: dict[str, dict[str, str]]) -> None:
        lines = []
        for section, values in settings.items():
            lines.append(f"[{section}]")
            lines.extend(f"{key} = {json.dumps(value)}" for key, value in values.items())
            lines.append("")
        self.ensure()
        write_atomically(self.config_file, "\n".join(lines))

    def open_token(self) -> Hsm:
        """The station token. On SoftHSM, a ``token.object`` left empty by a killed login
        is restored from its copy and the restore proven by logging in with the station
        PIN (a copy older than a PIN change is taken out again: an old PIN never comes
        back); then the copies are refreshed from the whole files."""
        from hsm.softhsm_files import backup_token_files, repair_token_files
        from hsm.token import PKCS11_LOCK

        config = self.token_config()
        if config.softhsm2_conf is None:
            return open_token(config)
        tokens = softhsm_token_dir(config.softhsm2_conf)
        with PKCS11_LOCK:
            repaired = repair_token_files(tokens)
            hsm = open_token(config)
            if repaired:
                _prove_repair(hsm, tokens, repaired)
            backup_token_files(tokens)
        return hsm

    def change_token_pin(self, new_pin: str) -> None:
        """Change the token's user PIN (C_SetPIN) and the station's PIN file, then refresh
        SoftHSM's ``token.object`` copy at once: a later repair restores the new PIN."""
        from hsm.softhsm_files import backup_token_files
        from hsm.token import PKCS11_LOCK

        config = self.token_config()
        hsm = self.open_token()
        with PKCS11_LOCK:
            hsm.call(lambda session: session.set_pin(config.read_pin(), new_pin))
            pin_file = Path(config.pin_file)
            tmp = pin_file.with_name(pin_file.name + ".new")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(new_pin + "\n")
            os.replace(tmp, pin_file)
            if config.softhsm2_conf is not None:
                backup_token_files(softhsm_token_dir(config.softhsm2_conf))

    def token_config(self) -> TokenConfig:
        settings = self.settings().get("hsm", {})
        if not settings and not os.environ.get("PKCS11_MODULE"):
            raise StationConfigError(
                f"no [hsm] section in {self.config_file}: run `juki rig up` or configure the token"
            )
        return TokenConfig.from_settings(settings, self.root)

    def default_hsm_settings(self) -> dict[str, str]:
        return {
            "module": SOFTHSM_MODULE,
            "token_label": DEFAULT_TOKEN_LABEL,
            "pin_file": "secrets/token.pin",
            "softhsm2_conf": "softhsm/softhsm2.conf",
        }
