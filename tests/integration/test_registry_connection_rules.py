"""The registry's own rules (migration 8, tools.registry.pg_rules) over a REAL station
connection: TLS, the station's certificate, its own role, on the server .ci/postgres-up
configured. Whatever SQL a station's connection sends, the log stays append-only, a card's
status moves only along the registry's transitions, a station writes only as itself and
the recipient table is not its to change. Each refusal is paired with the allowed
neighbour (the station does append, does change a status through the function), so a
refusal is the rule and not a connection that can do nothing."""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import errors

from .registry_server import (
    RegistryServer,
    StationCredentials,
    fresh_tls_database,
    issue_station,
    registry_server,
)

RULES_MIGRATION = 8


@pytest.fixture(scope="module")
def server() -> RegistryServer:
    return registry_server()


@pytest.fixture(scope="module")
def owner(server: RegistryServer) -> Iterator[psycopg.Connection]:
    fresh_tls_database(server)
    with psycopg.connect(server.owner_url(), autocommit=True) as db:
        version = db.execute("SELECT version FROM schema_version").fetchone()
        if version is None or version[0] < RULES_MIGRATION:
            pytest.fail(f"schema version {version}: part B's migration {RULES_MIGRATION} "
                        "(roles, grants, triggers) has not landed; these rules are not enforced")
        yield db


@pytest.fixture(scope="module")
def enrolled(server: RegistryServer, owner: psycopg.Connection,
             tmp_path_factory: pytest.TempPathFactory) -> StationCredentials:
    return issue_station(server, tmp_path_factory.mktemp("rules"), f"rules-{secrets.token_hex(4)}")


@pytest.fixture
def station(server: RegistryServer, enrolled: StationCredentials) -> Iterator[psycopg.Connection]:
    with psycopg.connect(server.station_conninfo(**enrolled.conninfo_params()), autocommit=True) as db:
        assert db.execute("SELECT current_user").fetchone() == (enrolled.role,)
        yield db


def _append(db: psycopg.Connection, station_id: str) -> int:
    idx = db.execute("SELECT coalesce(max(idx) + 1, 0) FROM provision_log").fetchone()[0]
    entry = json.dumps({"kind": "test", "station": station_id, "resident_id": None})
    with db.transaction():  # with its attestation, as the station code (migration 10)
        db.execute("INSERT INTO provision_log (idx, entry, kind, resident_id, mac, mac_version) "
                   "VALUES (%s, %s, 'test', NULL, %s, 1)", (idx, entry, b"\x01" * 32))
        db.execute("INSERT INTO log_attestations VALUES (%s, %s, %s, 'k', %s)",
                   (idx, idx + 1, station_id, b"\x00"))
    return int(idx)


def test_a_station_appends_as_itself_but_not_as_another(
        station: psycopg.Connection, enrolled: StationCredentials, owner: psycopg.Connection) -> None:
    idx = _append(station, enrolled.station_id)
    assert json.loads(owner.execute("SELECT entry FROM provision_log WHERE idx = %s",
                                    (idx,)).fetchone()[0])["station"] == enrolled.station_id
    for other in ("another-station", "", None):
        with pytest.raises(errors.InsufficientPrivilege, match="may not write a log entry naming"):
            _append(station, other)  # type: ignore[arg-type]
    assert owner.execute("SELECT count(*) FROM provision_log").fetchone() == (1,)


def test_the_log_cannot_be_rewritten_from_a_station(
        station: psycopg.Connection, enrolled: StationCredentials, owner: psycopg.Connection) -> None:
    idx = _append(station, enrolled.station_id)
    before = owner.execute("SELECT entry, mac FROM provision_log ORDER BY idx").fetchall()
    attacks = (
        ("UPDATE provision_log SET entry = entry WHERE idx = %s", (idx,)),
        ("UPDATE provision_log SET mac = %s", (b"\x00" * 32,)),
        ("DELETE FROM provision_log WHERE idx = %s", (idx,)),
        ("TRUNCATE provision_log", ()),
        ("DELETE FROM merkle_nodes", ()),
        ("TRUNCATE audit_checkpoints", ()),
        ("DELETE FROM log_batches", ()),
        ("DELETE FROM card_events", ()),
    )
    for sql, params in attacks:
        with pytest.raises(errors.InsufficientPrivilege):
            station.execute(sql, params)
    assert owner.execute("SELECT entry, mac FROM provision_log ORDER BY idx").fetchall() == before


def test_the_log_is_append_only_even_for_its_owner(
        station: psycopg.Connection, enrolled: StationCredentials, owner: psycopg.Connection) -> None:
    """The second barrier: a trigger, so a grant given by mistake would still not do."""
    idx = _append(station, enrolled.station_id)
    for sql in ("UPDATE provision_log SET kind = 'x' WHERE idx = %s",
                "DELETE FROM provision_log WHERE idx = %s"):
        with pytest.raises(errors.InsufficientPrivilege, match="append-only"):
            owner.execute(sql, (idx,))
    with pytest.raises(errors.InsufficientPrivilege, match="append-only"):
        owner.execute("TRUNCATE provision_log")
    assert owner.execute("SELECT kind FROM provision_log WHERE idx = %s", (idx,)).fetchone() == ("test",)


def _new_card(station: psycopg.Connection) -> str:
    serial = f"T{secrets.token_hex(6).upper()}"
    station.execute("INSERT INTO cards (serial, profile, status, created_at, updated_at) "
                    "VALUES (%s, 'resident', 'issuing', 'now', 'now')", (serial,))
    return serial


def _status(owner: psycopg.Connection, serial: str) -> str:
    return str(owner.execute("SELECT status FROM cards WHERE serial = %s", (serial,)).fetchone()[0])


def _move(station: psycopg.Connection, serial: str, old: str, new: str) -> int:
    return int(station.execute("SELECT juki_card_status(%s, %s, %s, NULL, NULL, NULL, 'now')",
                               (serial, old, new)).fetchone()[0])


def test_a_card_status_changes_only_along_the_transitions(
        station: psycopg.Connection, owner: psycopg.Connection) -> None:
    serial = _new_card(station)
    with pytest.raises(errors.InsufficientPrivilege):  # no UPDATE on cards.status at all
        station.execute("UPDATE cards SET status = 'active' WHERE serial = %s", (serial,))
    with pytest.raises(errors.CheckViolation):  # a card is created issuing, nothing else
        station.execute("INSERT INTO cards (serial, profile, status, created_at, updated_at) "
                        "VALUES ('TACTIVE', 'resident', 'active', 'now', 'now')")
    with pytest.raises(errors.CheckViolation, match="refuses card"):
        _move(station, serial, "issuing", "revoked")
    assert _status(owner, serial) == "issuing"
    assert _move(station, serial, "issuing", "active") == 1
    assert _status(owner, serial) == "active"
    assert _move(station, serial, "issuing", "active") == 0  # not from where it is
    with pytest.raises(errors.CheckViolation, match="refuses card"):
        _move(station, serial, "revoked", "active")  # a revoked card is never revived
    assert _move(station, serial, "active", "revoked") == 1
    with pytest.raises(errors.CheckViolation):
        _move(station, serial, "revoked", "active")
    assert _status(owner, serial) == "revoked"


def test_a_record_code_status_is_not_the_stations_to_set(station: psycopg.Connection) -> None:
    with pytest.raises(errors.InsufficientPrivilege):
        station.execute("UPDATE record_codes SET status = 'active'")
    with pytest.raises(errors.CheckViolation, match="refuses a record code"):
        station.execute("SELECT juki_record_code_status('X', NULL, 'retired', 'active', NULL, 'now')")


def test_the_recipient_table_is_read_only_for_stations(station: psycopg.Connection) -> None:
    station.execute("SELECT count(*) FROM recipients").fetchone()
    for sql in ("INSERT INTO recipients (recipient_id, name) VALUES ('EVIL', 'x')",
                "UPDATE recipients SET name = 'x'", "DELETE FROM recipient_purposes"):
        with pytest.raises(errors.InsufficientPrivilege):
            station.execute(sql)


def test_a_station_cannot_grant_itself_more(station: psycopg.Connection) -> None:
    for sql in ("ALTER TABLE provision_log DISABLE TRIGGER USER",
                "DROP TRIGGER provision_log_append_only ON provision_log",
                "ALTER FUNCTION juki_card_status(text, text, text, text, bytea, text, text) "
                "SECURITY INVOKER", "SET ROLE juki_owner", "SET ROLE juki_admin",
                "CREATE TABLE provision_log_copy (x int)", "CREATE ROLE juki_station_evil LOGIN"):
        with pytest.raises(errors.InsufficientPrivilege):
            station.execute(sql)
    with contextlib.suppress(errors.InsufficientPrivilege):  # grants nothing: warned or refused
        station.execute("GRANT UPDATE, DELETE, TRUNCATE ON provision_log TO CURRENT_USER")
    with pytest.raises(errors.InsufficientPrivilege):
        station.execute("DELETE FROM provision_log")


@pytest.fixture(scope="module", autouse=True)
def _no_leftover_roles(server: RegistryServer) -> Iterator[None]:
    yield
    with psycopg.connect(server.superuser_url(), autocommit=True) as db:
        db.execute("DROP DATABASE IF EXISTS juki_tls_test WITH (FORCE)")
        for (role,) in db.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE 'juki_station_rules_%'"
                                  ).fetchall():
            db.execute(f'DROP ROLE IF EXISTS "{role}"')
