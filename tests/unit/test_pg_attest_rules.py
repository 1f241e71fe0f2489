"""Migration 10 (tools.registry.pg_attest_rules) against what a station role might try on
the tables that let stations check each other's entries: an attestation or a checkpoint
as another station, an attestation over entries that do not exist or over another's, a
log-signing key of its own choosing, rewriting or removing any of them. Each is refused
by the database itself, while the station code's own signed appends go on."""

from __future__ import annotations

import pytest
from psycopg import errors

from tools.audit import log
from tools.registry import Registry
from tools.registry.roles import ADMIN_ROLE, station_role

from .fake_log_keys import FakeAttester
from .pg_station import OTHER_STATION_ID, STATION_ID, as_station, raw_as

ROLE = station_role(STATION_ID)


@pytest.fixture
def url(fresh_postgres: str) -> str:
    Registry(fresh_postgres).close()
    return fresh_postgres


def _honest(registry: Registry, count: int = 2) -> None:
    """The station code's appends, each with its attestation."""
    for _ in range(count):
        with registry.transaction() as db:
            log.append(db, {"station": STATION_ID}, "t", None, lambda _leaf: b"m" * 16, 1,
                       FakeAttester(None, STATION_ID))


def test_a_stations_own_attestations_and_checkpoints_are_admitted(url: str) -> None:
    station = as_station(url)
    _honest(station, 3)
    db = station.connection()
    assert [tuple(r) for r in db.execute(
        "SELECT start_idx, end_idx, station_id FROM log_attestations ORDER BY start_idx")] == [
        (0, 1, STATION_ID), (1, 2, STATION_ID), (2, 3, STATION_ID)]
    with station.transaction() as tx:
        tx.execute("INSERT INTO audit_checkpoints (size, root, at, key_label, signature, signer) "
                   "VALUES (3, ?, 't', 'k', ?, ?)", (b"\0" * 32, b"s", STATION_ID))
    station.close()


ATTACKS = {
    "attestation as another station": (
        "INSERT INTO log_attestations VALUES (2, 3, %s, 'k', %s)", (OTHER_STATION_ID, b"s"),
        errors.InsufficientPrivilege, "may not sign appends as station"),
    "attestation of another station's entry under its own name": (
        "INSERT INTO log_attestations VALUES (2, 3, %s, 'k', %s)", (STATION_ID, b"s"),
        errors.CheckViolation, "they must exist, name that station"),
    "attestation past the log": (
        "INSERT INTO log_attestations VALUES (3, 9, %s, 'k', %s)", (STATION_ID, b"s"),
        errors.CheckViolation, "the registry refuses an attestation"),
    "attestation over another's": (
        "INSERT INTO log_attestations VALUES (0, 2, %s, 'k', %s)", (STATION_ID, b"s"),
        errors.CheckViolation, "the registry refuses an attestation"),
    "checkpoint as another station": (
        "INSERT INTO audit_checkpoints (size, root, at, key_label, signature, signer) "
        "VALUES (1, %s, 't', 'k', %s, %s)", (b"\0" * 32, b"s", OTHER_STATION_ID),
        errors.InsufficientPrivilege, "may not add a checkpoint as station"),
    "checkpoint with no signer": (
        "INSERT INTO audit_checkpoints (size, root, at, key_label, signature) "
        "VALUES (1, %s, 't', 'k', %s)", (b"\0" * 32, b"s"),
        errors.InsufficientPrivilege, "may not add a checkpoint as station"),
    "a log key of its own choosing": (
        "INSERT INTO log_signers VALUES (%s, 'k', %s)", (STATION_ID, b"cert"),
        errors.InsufficientPrivilege, "permission denied"),
    "rewriting an attestation": (
        "UPDATE log_attestations SET signature = %s", (b"x",),
        errors.InsufficientPrivilege, "permission denied"),
    "removing an attestation": (
        "DELETE FROM log_attestations", (), errors.InsufficientPrivilege, "permission denied"),
    "truncating the attestations": (
        "TRUNCATE log_attestations", (), errors.InsufficientPrivilege, "permission denied"),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_the_database_refuses_it_from_a_station(url: str, attack: str) -> None:
    station = as_station(url)
    _honest(station, 2)
    other = as_station(url, OTHER_STATION_ID)
    with other.transaction() as db:  # entry 2, another station's
        log.append(db, {"station": OTHER_STATION_ID}, "t", None, lambda _leaf: b"m" * 16, 1,
                   FakeAttester(None, OTHER_STATION_ID))
    other.close()
    sql, params, refusal, says = ATTACKS[attack]
    with raw_as(url, ROLE) as attacker, pytest.raises(refusal, match=says):
        attacker.execute(sql, params)
    _honest(station, 1)  # and the station's own appends go on
    assert log.size(station.connection()) == 4
    station.close()


@pytest.mark.parametrize("table", ["log_attestations", "log_signers"])
def test_even_the_owner_cannot_rewrite_them(url: str, table: str) -> None:
    """Append-only by trigger for every role: only switching triggers off (a superuser,
    the owner as table owner) edits history, and verification names that."""
    station = as_station(url)
    _honest(station, 1)
    station.close()
    with raw_as(url, None) as owner:
        if table == "log_signers":
            owner.execute("INSERT INTO log_signers VALUES ('x', 'k', %s)", (b"c",))
        for sql in (f"DELETE FROM {table}", f"TRUNCATE {table}",
                    f"UPDATE {table} SET station_id = 'y'"):
            with pytest.raises(errors.InsufficientPrivilege, match="is append-only"):
                owner.execute(sql)


def test_the_registry_operator_adds_log_keys(url: str) -> None:
    as_station(url).close()
    with raw_as(url, ADMIN_ROLE) as admin:
        admin.execute("INSERT INTO log_signers VALUES (%s, 'k', %s)", (STATION_ID, b"cert"))
        rows = admin.execute("SELECT station_id FROM log_signers").fetchall()
    assert rows == [(STATION_ID,)]


def test_an_entry_no_attestation_covers_is_refused_at_commit(url: str) -> None:
    """(Security review.) One unattested entry of a station's would stop every other
    station's checkpoints (they cannot prove it, and the log is append-only): the
    registry refuses the transaction at COMMIT, entry and all."""
    station = as_station(url)
    _honest(station, 1)
    with pytest.raises(errors.CheckViolation, match="no attestation of its station covers"), \
            station.transaction() as db:
        log.append(db, {"station": STATION_ID}, "t", None, lambda _leaf: b"m" * 16, 1)
    assert log.size(station.connection()) == 1
    _honest(station, 1)  # and the station's own appends go on
    assert log.size(station.connection()) == 2
    station.close()
