"""What the station refuses to run on: any file it trusts that someone else could write
or swap, and any secret that someone else could read.

The service is the only holder of the token PIN and the registry; whoever could write
its configuration, its PIN file, its SoftHSM store or the PKCS#11 module it loads could
make it run their code or talk to their token, whoever could read the home could read
the registry, and whoever could rename a directory above any of these could put a home
of their own in its place. So every path the station trusts is owned by the service
user (or root) and writable by no one else, and so is every directory above it (a
root-owned sticky directory such as /tmp is accepted above a private directory, since
nobody else may rename entries in it; never above the PKCS#11 module); the home, the
secrets, the token store and the registry are private (no group or other access).
Root running `juki` locally gets the same check with uid 0 as the only trusted owner.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from hsm.errors import HsmError

from ..errors import StationConfigError
from ..station.home import StationHome, softhsm_token_dir

PRIVATE = stat.S_IRWXG | stat.S_IRWXO  # no group or other access of any kind
SHARED_WRITE = stat.S_IWGRP | stat.S_IWOTH


def _owner_problem(path: Path, info: os.stat_result, service_uid: int) -> str | None:
    if info.st_uid not in (service_uid, 0):
        return f"{path} is owned by uid {info.st_uid}, not by the service (uid {service_uid}) or root"
    return None


def check_trusted(path: Path, service_uid: int, *, private: bool,
                  sticky_ok: bool = False) -> list[str]:
    """Problems of one path: wrong owner, writable (or, if ``private``, accessible) by
    group or others. A missing path is no problem here (the caller decides)."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return []
    except OSError as exc:
        return [f"{path} cannot be examined: {exc.strerror}"]
    problems = [p for p in [_owner_problem(path, info, service_uid)] if p]
    shared_sticky = sticky_ok and info.st_uid == 0 and info.st_mode & stat.S_ISVTX
    if stat.S_ISLNK(info.st_mode):
        if private:
            problems.append(f"{path} is a symbolic link; the station follows none to its secrets")
    elif private and info.st_mode & PRIVATE:
        problems.append(f"{path} is open to group or others (mode {stat.S_IMODE(info.st_mode):04o}); "
                        f"it must be {'0700' if stat.S_ISDIR(info.st_mode) else '0600'}")
    elif info.st_mode & SHARED_WRITE and not shared_sticky:
        problems.append(f"{path} is writable by group or others (mode "
                        f"{stat.S_IMODE(info.st_mode):04o})")
    return problems


def check_above(path: Path, service_uid: int, *, sticky_ok: bool) -> list[str]:
    """Every directory above ``path``, as given and as its symbolic links resolve."""
    problems: list[str] = []
    for chain in (path.parents, Path(os.path.realpath(path)).parents):
        for part in chain:
            problems += check_trusted(part, service_uid, private=False, sticky_ok=sticky_ok)
    return problems


def check_path_to(path: Path, service_uid: int) -> list[str]:
    """Code the station loads: the file and every directory above it writable by its
    owner only, each owned by root or the service (no sticky exception)."""
    problems = check_above(path, service_uid, sticky_ok=False)
    problems += check_trusted(Path(os.path.realpath(path)), service_uid, private=False)
    return list(dict.fromkeys(problems))


def check_secret(path: Path, service_uid: int) -> list[str]:
    """A private file or directory and everything above it."""
    return (check_trusted(path, service_uid, private=True)
            + check_above(path, service_uid, sticky_ok=True))


def _configured_problems(home: StationHome, service_uid: int) -> list[str]:
    """The paths the configuration (or the service's environment) names."""
    problems: list[str] = []
    if home.settings().get("hsm") or os.environ.get("PKCS11_MODULE"):
        config = home.token_config()
        problems += check_secret(config.pin_file, service_uid)
        problems += check_path_to(Path(config.module), service_uid)
        if config.softhsm2_conf is not None:
            problems += check_secret(config.softhsm2_conf, service_uid)
            if config.softhsm2_conf.is_file():
                problems += check_secret(softhsm_token_dir(config.softhsm2_conf), service_uid)
    target = home.registry_target()
    if not str(target).startswith(("postgresql://", "postgres://")):
        problems += check_secret(Path(target), service_uid)
    recipients = home.settings().get("audit", {}).get("recipients_file")
    if recipients:
        path = Path(recipients)
        problems += check_trusted(path, service_uid, private=False)
        problems += check_above(path, service_uid, sticky_ok=False)
    extra_anchors = home.settings().get("trust", {}).get("extra")
    if extra_anchors:  # a trust anchor file: who can write it decides which cards are genuine
        path = Path(extra_anchors)
        problems += check_trusted(path, service_uid, private=False)
        # inside the home: as safe as the home, whose parents may be sticky (like /tmp)
        problems += check_above(path, service_uid, sticky_ok=path.is_relative_to(home.root))
    return problems


def home_problems(home: StationHome, service_uid: int) -> list[str]:
    """Everything that makes ``home`` unsafe to run the station on (empty when safe)."""
    if not home.root.is_dir():
        return [f"{home.root} does not exist: create it (0700, owned by the service user)"]
    problems = check_secret(home.root, service_uid)
    for private in (home.config_file, home.secrets_dir, home.registry_file,
                    home.softhsm_dir, home.root / "sessions", home.root / "audit"):
        problems += check_trusted(private, service_uid, private=True)
    try:
        problems += _configured_problems(home, service_uid)
    except (OSError, StationConfigError, HsmError) as exc:
        problems.append(f"the configuration in {home.root} cannot be read: {exc}")
    return list(dict.fromkeys(problems))
