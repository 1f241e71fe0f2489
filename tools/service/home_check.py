"""What the station service refuses to start on: any file it trusts that someone else
could write, and any secret that someone else could read.

The service is the only holder of the token PIN and the registry; whoever could write
its configuration, its PIN file or the PKCS#11 module it loads could make it run their
code or talk to their token, and whoever could read the home could read the registry.
So: every path the service trusts is owned by the service user (or root) and writable by
no one else, every directory on the way to the PKCS#11 module too, and the home, the
secrets and the registry are private (no group or other access at all).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from hsm.config import TokenConfig

from ..station.home import StationHome

PRIVATE = stat.S_IRWXG | stat.S_IRWXO  # no group or other access of any kind
SHARED_WRITE = stat.S_IWGRP | stat.S_IWOTH


def _owner_problem(path: Path, info: os.stat_result, service_uid: int) -> str | None:
    if info.st_uid not in (service_uid, 0):
        return f"{path} is owned by uid {info.st_uid}, not by the service (uid {service_uid}) or root"
    return None


def check_trusted(path: Path, service_uid: int, *, private: bool) -> list[str]:
    """Problems of one path: wrong owner, writable (or, if ``private``, accessible) by
    group or others. A missing path is no problem here (the caller decides)."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return []
    problems = [p for p in [_owner_problem(path, info, service_uid)] if p]
    if stat.S_ISLNK(info.st_mode):
        problems.append(f"{path} is a symbolic link; the service follows none in its home")
    elif private and info.st_mode & PRIVATE:
        problems.append(f"{path} is open to group or others (mode {stat.S_IMODE(info.st_mode):04o}); "
                        f"it must be {'0700' if stat.S_ISDIR(info.st_mode) else '0600'}")
    elif info.st_mode & SHARED_WRITE:
        problems.append(f"{path} is writable by group or others (mode "
                        f"{stat.S_IMODE(info.st_mode):04o})")
    return problems


def check_path_to(path: Path, service_uid: int) -> list[str]:
    """The file and every directory above it, on the path as given and on the path the
    symbolic links lead to: none writable by anyone but its owner, each owned by root or
    the service (a sticky /tmp does not make a module safe)."""
    problems: list[str] = []
    for chain in (path.parents, Path(os.path.realpath(path)).parents):
        for part in chain:
            problems += check_trusted(part, service_uid, private=False)
    problems += check_trusted(Path(os.path.realpath(path)), service_uid, private=False)
    return list(dict.fromkeys(problems))


def home_problems(home: StationHome, service_uid: int) -> list[str]:
    """Everything that makes ``home`` unsafe to serve from (empty when it is safe)."""
    if not home.root.is_dir():
        return [f"{home.root} does not exist: create it (0700, owned by the service user)"]
    problems = check_trusted(home.root, service_uid, private=True)
    for private in (home.config_file, home.secrets_dir, home.registry_file,
                    home.softhsm_dir, home.root / "sessions"):
        problems += check_trusted(private, service_uid, private=True)
    if home.settings().get("hsm") or os.environ.get("PKCS11_MODULE"):
        config: TokenConfig = home.token_config()
        problems += check_trusted(config.pin_file, service_uid, private=True)
        problems += check_path_to(Path(config.module), service_uid)
        if config.softhsm2_conf is not None:
            problems += check_trusted(config.softhsm2_conf, service_uid, private=True)
    return problems
