"""A PostgreSQL registry migrated by the test harness (a superuser, as `juki db
upgrade` would be run by the owner), and connections that act as a station role.

A station connection here is ``SET SESSION AUTHORIZATION <station role>``: unlike
``SET ROLE``, it also changes the session user, so what the station may ``SET ROLE``
to afterwards is judged as for a real login of that role (over TLS, part A)."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

import psycopg

from tools.registry import Registry
from tools.registry.pg_roles import add_station

STATION_ID = "pg-rules-a"
OTHER_STATION_ID = "pg-rules-b"


def as_station(url: str, station_id: str = STATION_ID) -> Registry:
    """A Registry whose connection is the station's role (bound by ``add_station``)."""
    owner = Registry(url)
    role = add_station(owner.connection(), station_id)
    owner.close()
    registry = Registry(url)
    registry.connection().execute(f'SET SESSION AUTHORIZATION "{role}"')
    return registry


def raw_as(url: str, role: str | None) -> psycopg.Connection:
    """A plain autocommit connection acting as ``role`` (None: the superuser)."""
    db = psycopg.connect(url, autocommit=True)
    if role is not None:
        db.execute(f'SET SESSION AUTHORIZATION "{role}"')
    return db


def collect_scenarios(namespace: dict[str, Any], package: str, names: tuple[str, ...],
                      select: Callable[[str], bool] = lambda _name: True) -> None:
    """The tests of the scenario modules ``names`` that use the ``registry`` fixture,
    and those modules' fixtures, into ``namespace`` (a test module): collected there
    again, with that module's ``registry`` fixture. Two scenario modules with a fixture
    of the same name cannot share one test module. ``select``: which tests (by name)."""
    for name in names:
        try:
            module = importlib.import_module(f"{package}.{name}")
        except ModuleNotFoundError:  # a scenario module not (yet) in this tree
            continue
        for attribute, value in vars(module).items():
            if attribute.startswith("test_"):
                if callable(value) and select(attribute) and \
                        "registry" in inspect.signature(value).parameters:
                    namespace[f"{attribute}__{name}"] = value
            elif hasattr(value, "_pytestfixturefunction") or type(value).__name__ == \
                    "FixtureFunctionDefinition":
                if attribute in namespace and namespace[attribute] is not value:
                    raise RuntimeError(f"fixture {attribute} of {name} collides")
                namespace[attribute] = value


def station_registry(fresh_postgres: str, module: str,
                     station_of: dict[str, str]) -> Registry:
    """A PostgreSQL registry migrated by the owner, its connection a station role bound
    to the station id the scenario module's log entries name."""
    Registry(fresh_postgres).close()
    station = as_station(fresh_postgres, station_of.get(module.rsplit(".", 1)[-1], STATION_ID))
    role = station.connection().execute("SELECT current_user").fetchone()[0]
    assert role.startswith("juki_station_")
    return station
