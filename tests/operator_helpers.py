"""Helpers for the operator tiers: station homes of their own (registry, session, mode)
that share the session rig's token and readers; enrolment and login through the CLI.

When the suite runs with the station registry on PostgreSQL (``JUKI_DB`` set, the
second pass of `make test`), each such home gets a fresh PostgreSQL database of its own
named in its config; ``tests.conftest.juki`` passes it on as ``JUKI_DB``."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from tools.registry import Registry
from tools.rig.rig import reader_name
from tools.station.home import StationHome

from .conftest import create_database, juki

READER = reader_name(0)
ADMIN_PIN, ADMIN_PUK = "135792", "24682468"


def operator_station(rig_home: Path, root: Path, **operator_policy: object) -> Path:
    """A station home of its own (registry, session, mode) using the rig's token."""
    hsm = StationHome(rig_home).settings()["hsm"]
    absolute = {k: (str(rig_home / v) if k in ("pin_file", "softhsm2_conf") else v)
                for k, v in hsm.items()}
    home = StationHome(root)
    station_id = f"{root.parent.name}-{root.name}-{secrets.token_hex(3)}"
    # open by root's word (the tests run as root): a station with an operator-admin is
    # otherwise in operator mode (tests switch with operator_mode)
    settings: dict[str, dict[str, object]] = {"hsm": absolute,
                                              "station": {"id": station_id, "mode": "open"}}
    if os.environ.get("JUKI_DB"):
        settings["registry"] = {"url": create_database("juki_op")}
    if operator_policy:
        settings["operator"] = dict(operator_policy)
    home.write_settings(settings)  # type: ignore[arg-type]
    home.ensure()
    return root


def insert_operator_card(rig_home: Path, state: Path) -> None:
    """Put the operator card kept in ``state`` (a new blank one if absent) in slot 0."""
    juki(rig_home, "rig", "insert", "--slot", "0", "--kind", "operator", "--state", str(state))


def pin_file(directory: Path, pin: str, puk: str | None = None) -> Path:
    path = directory / f"op-pins-{pin}.txt"
    path.write_text(f"operator_pin={pin}\n" + (f"operator_puk={puk}\n" if puk else ""))
    os.chmod(path, 0o600)
    return path


def enroll(home: Path, rig_home: Path, card: Path, operator_id: str, scopes: str, *,
           pin: str = ADMIN_PIN, puk: str = ADMIN_PUK, algorithm: str = "p256",
           unix_user: str | None = None, check: int | None = 0) -> dict:
    insert_operator_card(rig_home, card)
    extra = ["--unix-user", unix_user] if unix_user else []
    result = juki(home, "operator", "enroll", "--id", operator_id, "--name", f"Name of {operator_id}",
                  "--municipality", "131016", "--scopes", scopes, "--algorithm", algorithm,
                  "--reader", READER, "--pin-file", str(pin_file(card.parent, pin, puk)),
                  "--json", *extra, check=check)
    return json.loads(result.stdout) if result.returncode == 0 else {}


def login(home: Path, rig_home: Path, card: Path, pin: str = ADMIN_PIN,
          check: int | None = 0):  # type: ignore[no-untyped-def]
    insert_operator_card(rig_home, card)
    return juki(home, "login", "--reader", READER, "--json", input=pin + "\n", check=check)


def operator_mode(home: Path) -> None:
    """Switch ``home`` to operator mode: by `juki station mode` when it has an active
    operator-admin, else in its config (as the machine's administrator would)."""
    if juki(home, "station", "mode", "operator", check=None).returncode == 0:
        return
    station = StationHome(home)
    settings = station.settings()
    settings.setdefault("station", {})["mode"] = "operator"
    station.write_settings(settings)


def admin_station(rig_home: Path, root: Path, scopes: str = "operator-admin,verify", *,
                  logged_in: bool = False) -> Path:
    """An operator-mode station at ``root/station`` with operator ``admin`` (card
    ``root/admin.json``, ``ADMIN_PIN``) enrolled with ``scopes``; logged in if asked."""
    home = operator_station(rig_home, root / "station")
    enroll(home, rig_home, root / "admin.json", "admin", scopes)
    operator_mode(home)
    if logged_in:
        login(home, rig_home, root / "admin.json")
    return home


def registry_target(home: Path) -> Path | str:
    """The station's own registry (its config's PostgreSQL URL, else its SQLite file)."""
    url = StationHome(home).settings().get("registry", {}).get("url")
    return url or home / "registry.sqlite"


def station_registry(home: Path) -> Registry:
    return Registry(registry_target(home))
