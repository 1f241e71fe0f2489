"""Migration 9 (tools.registry.pg_log_rules, security review of issue 14) against the
attacks it answers, from a station role: a bogus Merkle leaf or node, a log_batches row
at the next index / over entries with their own MAC / overlapping, a checkpoint beyond
the log, an entry of its own at index 2^63-1 or past a gap, an operator inserted active.
Without the migration each landed and the honest append that followed failed (one
station halted every station's appends); with it each is refused, while the station
code's own appends (one by one and group commits) and operator enrolment go on."""

from __future__ import annotations

import json

import pytest
from psycopg import errors

from tools.audit import log
from tools.registry import Registry
from tools.registry.roles import station_role

from .fake_log_keys import FakeAttester
from .pg_station import STATION_ID, as_station, raw_as

ROLE = station_role(STATION_ID)


def _honest(registry: Registry, count: int = 1, group: int = 0) -> None:
    """The station code's appends: ``count`` single entries, then a group of ``group``."""
    for _ in range(count):
        with registry.transaction() as db:
            log.append(db, {"station": STATION_ID}, "t", None, lambda _leaf: b"m" * 16, 1,
                       FakeAttester(None, STATION_ID))
    if group:
        with registry.transaction() as db:
            log.append_batch(db, [({"station": STATION_ID}, "t", None)] * group,
                             lambda _m: b"b" * 16, 1, FakeAttester(None, STATION_ID))


def _attacks(n: int) -> dict[str, tuple[str, tuple[object, ...]]]:
    entry = json.dumps({"station": STATION_ID})
    return {
        "leaf at the next index": ("INSERT INTO merkle_nodes VALUES (0, %s, %s)", (n, b"\0")),
        "inner node": ("INSERT INTO merkle_nodes VALUES (6, 0, %s)", (b"\0",)),
        "batch at the next index": ("INSERT INTO log_batches VALUES (%s, %s, %s, 1)",
                                    (n, n + 1, b"\0")),
        "batch over own-MAC entries": ("INSERT INTO log_batches VALUES (0, 2, %s, 1)", (b"\0",)),
        "checkpoint beyond the log": ("INSERT INTO audit_checkpoints VALUES (%s, %s, 't', 'k', "
                                      "%s)", (n + 5, b"\0", b"\0")),
        "own entry at 2^63-1": ("INSERT INTO provision_log VALUES (9223372036854775807, %s, "
                                "'t', NULL, %s, 1)", (entry, b"\1")),
        "operator inserted active": ("INSERT INTO operators (operator_id, name, "
                                     "municipality_code, scopes, status, created_at, updated_at) "
                                     "VALUES ('evil', 'E', '131016', 'all', 'active', 't', 't')",
                                     ()),
    }


@pytest.fixture
def url(fresh_postgres: str) -> str:
    Registry(fresh_postgres).close()
    return fresh_postgres


@pytest.mark.parametrize("attack", list(_attacks(0)))
def test_with_migration_9_the_attack_is_refused_and_appends_go_on(url: str, attack: str) -> None:
    assert Registry(url).schema_version() >= 9  # in MIGRATIONS: every registry has it
    station = as_station(url)
    _honest(station, 5, 7)
    _honest(station, 1, 3)
    n = log.size(station.connection())
    sql, params = _attacks(n)[attack]
    with raw_as(url, ROLE) as attacker, pytest.raises(errors.CheckViolation,
                                                      match="the registry refuses"):
        attacker.execute(sql, params)
    _honest(station, 2, 4)
    assert log.size(station.connection()) == n + 6
    assert log.root(station.connection(), n + 6) is not None
    station.close()
