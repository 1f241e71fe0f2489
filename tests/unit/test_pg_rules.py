"""Migration 8: the PostgreSQL registry enforces its rules itself. Each attack is made
in SQL by a station role (as a compromised station would, past the juki code) and must
be refused BY THE DATABASE; the same change through the registry code still works."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from psycopg import errors

from tools.audit import log
from tools.registry import Registry, RegistryError, new_record_code, pg_roles, pg_rules
from tools.registry.registry import TRANSITIONS
from tools.registry.roles import ADMIN_ROLE, OWNER_ROLE, station_role
from tools.registry.schema import MIGRATIONS

from .pg_station import OTHER_STATION_ID, STATION_ID, as_station, raw_as

SERIAL = "100000000000001"
ROLE = station_role(STATION_ID)


@pytest.fixture
def url(fresh_postgres: str) -> str:
    Registry(fresh_postgres).close()  # migrated by the superuser (the owner's upgrade)
    return fresh_postgres


@pytest.fixture
def station(url: str):  # type: ignore[no-untyped-def]
    registry = as_station(url)
    yield registry
    registry.close()


@pytest.fixture
def owner_db(url: str):  # type: ignore[no-untyped-def]
    """The owner's connection (the harness's superuser) as a Backend."""
    registry = Registry(url)
    yield registry.connection()
    registry.close()


@pytest.fixture
def sql(url: str, station: Registry):  # type: ignore[no-untyped-def]
    """A raw SQL connection as the station's role (the attacker's tool)."""
    db = raw_as(url, ROLE)
    yield db
    db.close()


def issue(registry: Registry, serial: str = SERIAL) -> str:
    code = new_record_code()
    registry.begin_issuance(serial, "resident", code, "131016", dt.date(2036, 1, 1))
    registry.complete_issuance(serial, b"cert")
    return code


def entry(station_id: str | None, index: int = 0) -> str:
    fields = {"index": index, "kind": "event", "event": "probe"}
    if station_id is not None:
        fields["station"] = station_id
    return json.dumps(fields, sort_keys=True, separators=(",", ":"))


def seed_rows(url: str) -> None:
    """Rows in each append-only table (as the superuser, through the log's own appends:
    migration 9 admits only the nodes and batches the log implies), so row triggers fire."""
    registry = Registry(url)
    with registry.transaction() as db:
        log.append(db, {"station": STATION_ID}, "event", None, lambda _leaf: b"\0" * 16, 1)
        log.append_batch(db, [({"station": STATION_ID}, "event", None)],
                         lambda _message: b"\0" * 16, 1)
    registry.close()
    with raw_as(url, None) as db:
        db.execute("INSERT INTO audit_checkpoints VALUES (1, '\\x00', 'now', 'k', '\\x00')")
        db.execute("INSERT INTO card_events (serial, at, to_status) VALUES ('1', 'now', 'active')")
        db.execute("INSERT INTO operator_events (operator_id, at, event) VALUES ('o', 'now', 'x')")


def test_the_frozen_transitions_are_the_registrys() -> None:
    code_pairs = {(before, to) for to, befores in TRANSITIONS.items() for before in befores}
    assert set(pg_rules.CARD_TRANSITIONS) == code_pairs | {("issuing", "active"),
                                                          ("issuing", "failed")}
    assert len(MIGRATIONS) == 10


@pytest.mark.parametrize("table", pg_rules.APPEND_ONLY)
def test_append_only_tables_refuse_update_delete_truncate(url: str, sql, table: str) -> None:  # type: ignore[no-untyped-def]
    seed_rows(url)
    change = {"UPDATE": f"UPDATE {table} SET {_column(table)} = {_column(table)}",
              "DELETE": f"DELETE FROM {table}", "TRUNCATE": f"TRUNCATE {table}"}
    for statement in change.values():  # the station: no privilege at all
        with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
            sql.execute(statement)
    with raw_as(url, None) as owner:  # the owner (even a superuser): the trigger refuses
        rows = owner.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        owner.execute(f"SET ROLE {OWNER_ROLE}")
        for op, statement in change.items():
            with pytest.raises(errors.InsufficientPrivilege, match=f"refuses {op} on {table}"):
                owner.execute(statement)
        owner.execute("RESET ROLE")
        assert rows >= 1 and owner.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == rows


def _column(table: str) -> str:
    return {"provision_log": "entry", "merkle_nodes": "hash", "audit_checkpoints": "root",
            "log_batches": "mac", "card_events": "reason", "operator_events": "detail"}[table]


def test_a_station_cannot_disable_the_triggers_or_create_objects(sql) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(errors.InsufficientPrivilege, match="must be owner"):
        sql.execute("ALTER TABLE provision_log DISABLE TRIGGER ALL")
    with pytest.raises(errors.InsufficientPrivilege):
        sql.execute("SET session_replication_role = replica")
    with pytest.raises(errors.InsufficientPrivilege, match="permission denied for schema"):
        sql.execute("CREATE TABLE cards_shadow (serial TEXT)")
    with pytest.raises(errors.InsufficientPrivilege, match="must be owner"):
        sql.execute("ALTER FUNCTION juki_card_status(text, text, text, text, bytea, text, text) "
                    "SECURITY INVOKER")


def test_card_status_changes_only_through_the_checked_function(station: Registry, sql) -> None:  # type: ignore[no-untyped-def]
    issue(station)
    station.set_status(SERIAL, "revoked", "lost")  # the code's way works as the station
    with pytest.raises(errors.InsufficientPrivilege, match="permission denied for table cards"):
        sql.execute("UPDATE cards SET status = 'active' WHERE serial = %s", (SERIAL,))
    with pytest.raises(errors.CheckViolation, match="going from revoked to active"):
        sql.execute("SELECT juki_card_status(%s, 'revoked', 'active', NULL, NULL, NULL, 'now')",
                    (SERIAL,))
    # lying about the current status changes nothing
    assert sql.execute("SELECT juki_card_status(%s, 'suspended', 'active', NULL, NULL, NULL, "
                       "'now')", (SERIAL,)).fetchone()[0] == 0
    with pytest.raises(errors.CheckViolation, match="a card starts issuing"):
        sql.execute("INSERT INTO cards (serial, profile, status, created_at, updated_at) "
                    "VALUES ('100000000000002', 'resident', 'active', 'now', 'now')")
    assert station.get(SERIAL).status == "revoked"  # type: ignore[union-attr]


def test_record_code_status_changes_only_through_the_checked_function(station: Registry,
                                                                      sql) -> None:  # type: ignore[no-untyped-def]
    code = issue(station)
    resident, new = station.reserve_new_code(code)
    station.commit_code_change(resident, code, new, "requested")  # the code's way works
    with pytest.raises(errors.InsufficientPrivilege, match="permission denied for table record"):
        sql.execute("UPDATE record_codes SET status = 'active' WHERE code = %s", (code,))
    with pytest.raises(errors.CheckViolation, match="from retired to active"):
        sql.execute("SELECT juki_record_code_status(%s, NULL, 'retired', 'active', NULL, 'now')",
                    (code,))
    assert sql.execute("SELECT juki_record_code_status(%s, NULL, 'pending', 'active', NULL, "
                       "'now')", (code,)).fetchone()[0] == 0
    assert station.resident_of_code(code) == (resident, "retired")
    assert station.active_code(resident) == new


def test_the_checked_functions_are_pinned_and_owned(station: Registry, sql) -> None:  # type: ignore[no-untyped-def]
    rows = sql.execute("SELECT p.proname, r.rolname, p.prosecdef, p.proconfig FROM pg_proc p "
                       "JOIN pg_roles r ON r.oid = p.proowner WHERE p.proname LIKE 'juki%%'"
                       ).fetchall()
    by_name = {name: (owner, definer, config) for name, owner, definer, config in rows}
    for name in ("juki_card_status", "juki_record_code_status"):
        owner, definer, config = by_name[name]
        assert owner == OWNER_ROLE and definer
        assert config == ["search_path=pg_catalog, public, pg_temp"]
    issue(station)
    # a temporary table named like the registry's does not shadow it inside the function
    sql.execute("CREATE TEMP TABLE cards (id bigint, serial text, status text)")
    sql.execute("INSERT INTO cards VALUES (99, %s, 'revoked')", (SERIAL,))
    assert sql.execute("SELECT juki_card_status(%s, 'active', 'suspended', 'why', NULL, NULL, "
                       "'now')", (SERIAL,)).fetchone()[0] == 1
    assert station.get(SERIAL).status == "suspended"  # type: ignore[union-attr]


def test_recipients_are_read_only_for_a_station(url: str, sql) -> None:  # type: ignore[no-untyped-def]
    assert sql.execute("SELECT count(*) FROM recipients").fetchone()[0] == 0
    for statement in ("INSERT INTO recipients VALUES ('X', 'x')",
                      "UPDATE recipients SET name = 'y'", "DELETE FROM recipients",
                      "INSERT INTO recipient_purposes VALUES ('X', 'c', 'd')",
                      "DELETE FROM recipient_purposes"):
        with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
            sql.execute(statement)
    with raw_as(url, None) as admin:  # the administrative role may
        admin.execute(f"SET ROLE {ADMIN_ROLE}")
        admin.execute("INSERT INTO recipients VALUES ('X', 'x')")
        admin.execute("INSERT INTO recipient_purposes VALUES ('X', 'c', 'd')")
    assert sql.execute("SELECT count(*) FROM recipient_purposes").fetchone()[0] == 1


def test_a_station_writes_log_entries_only_as_itself(owner_db, sql) -> None:  # type: ignore[no-untyped-def]
    insert = ("INSERT INTO provision_log (idx, entry, kind, resident_id, mac, mac_version) "
              "VALUES (%s, %s, 'event', NULL, '\\x00', 1)")
    with sql.transaction():  # as itself, with its attestation (migration 10): admitted
        sql.execute(insert, (0, entry(STATION_ID, 0)))
        sql.execute("INSERT INTO log_attestations VALUES (0, 1, %s, 'k', '\\x00')",
                    (STATION_ID,))
    pg_roles.add_station(owner_db, OTHER_STATION_ID)  # the other station exists
    with pytest.raises(errors.InsufficientPrivilege, match=f"naming station {OTHER_STATION_ID}"):
        sql.execute(insert, (1, entry(OTHER_STATION_ID, 1)))
    with pytest.raises(errors.InsufficientPrivilege, match=r"naming station \(none\)"):
        sql.execute(insert, (1, entry(None, 1)))
    sql.execute("SET ROLE juki_stations")  # the group it belongs to is bound to no station
    with pytest.raises(errors.InsufficientPrivilege, match="role juki_stations is not an enrolled"):
        sql.execute(insert, (1, entry(STATION_ID, 1)))
    sql.execute("RESET ROLE")
    pg_roles.disable_station(owner_db, STATION_ID)  # revoked: not even as itself
    with pytest.raises(errors.InsufficientPrivilege, match="not an enrolled station"):
        sql.execute(insert, (1, entry(STATION_ID, 1)))
    assert sql.execute("SELECT count(*) FROM provision_log").fetchone()[0] == 1


@pytest.mark.parametrize("target", [station_role(OTHER_STATION_ID), OWNER_ROLE, ADMIN_ROLE])
def test_a_station_cannot_become_another_role(owner_db, sql, target: str) -> None:  # type: ignore[no-untyped-def]
    pg_roles.add_station(owner_db, OTHER_STATION_ID)
    with pytest.raises(errors.InsufficientPrivilege, match="permission denied to set role"):
        sql.execute(f'SET ROLE "{target}"')
    attributes = sql.execute("SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM "
                             "pg_roles WHERE rolname = current_user").fetchone()
    assert attributes == (False, False, False, False)


def test_only_the_owner_migrates(owner_db, station: Registry) -> None:  # type: ignore[no-untyped-def]
    latest = len(MIGRATIONS)
    owner_db.execute(f"UPDATE schema_version SET version = {latest - 1}")  # as if juki were newer
    with pytest.raises(RegistryError, match=fr"version {latest - 1}, this juki needs {latest}.*"
                                            "juki db upgrade"):
        station.migrate()
    assert station.schema_version() == latest - 1  # nothing was run
    assert not pg_roles.is_owner(station.connection())
    assert pg_roles.is_owner(owner_db)
    owner_db.execute(f"SET ROLE {OWNER_ROLE}")
    assert pg_roles.is_owner(owner_db)  # the owner role itself (not only a superuser)
    owner_db.execute("RESET ROLE")
    owner_db.execute(f"UPDATE schema_version SET version = {latest}")
    assert station.migrate() == latest  # current: nothing to do, the station goes on


def test_add_station_is_idempotent_and_never_reuses_a_revoked_id(owner_db) -> None:  # type: ignore[no-untyped-def]
    db = owner_db
    role = pg_roles.add_station(db, "pg-rules-c")
    assert pg_roles.add_station(db, "pg-rules-c") == role == "juki_station_pg_rules_c"
    with pytest.raises(RegistryError, match="already bound to station pg-rules-c"):
        pg_roles.add_station(db, "pg_rules_c")  # the same role name
    pg_roles.disable_station(db, "pg-rules-c")
    assert db.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = ?",
                      (role,)).fetchone()[0] is False
    with pytest.raises(RegistryError, match="never reused"):
        pg_roles.add_station(db, "pg-rules-c")
    with pytest.raises(RegistryError, match="not an enrolled station"):
        pg_roles.disable_station(db, "pg-rules-c")
    assert [s["status"] for s in pg_roles.stations(db)] == ["revoked"]
    db.execute(f'ALTER ROLE "{role}" LOGIN')  # roles are cluster-wide: leave it usable


def test_station_roles_refuse_sqlite(tmp_path) -> None:  # type: ignore[no-untyped-def]
    registry = Registry(tmp_path / "r.sqlite")
    with pytest.raises(RegistryError, match="need a PostgreSQL registry"):
        pg_roles.add_station(registry.connection(), "x")
    assert pg_roles.is_owner(registry.connection())
    assert registry.connection().execute("SELECT count(*) FROM registry_stations"
                                         ).fetchone()[0] == 0


def test_revoked_stays_revoked_and_crl_numbers_only_grow_for_every_role(
        station: Registry, sql, owner_db) -> None:  # type: ignore[no-untyped-def]
    issue(station)
    station.set_status(SERIAL, "revoked", "lost")
    station.next_crl_number("card-ca", 1)
    station.next_crl_number("card-ca", 1)  # 2, through the code
    owner_db.execute("INSERT INTO certificates VALUES ('ab', 'card-ca', 1, 'card', ?, NULL, "
                     "'2036-01-01', 'revoked', 'lost', 'now', ?, 'now')", (SERIAL, b"der"))
    owner_db.execute(f"SET ROLE {OWNER_ROLE}")  # the owner holds every privilege ...
    refused = {  # ... and is still refused, as the station is (by grant, or the same trigger)
        "UPDATE cards SET status = 'active' WHERE serial = %s": "cards going from revoked",
        "UPDATE certificates SET status = 'valid' WHERE serial_number = 'ab'":
            "certificates going from revoked to valid",
        "UPDATE crl_numbers SET number = 1": "CRL number 1 after 2",
    }
    for statement, message in refused.items():
        args = (SERIAL,) if "%s" in statement else ()
        with pytest.raises(errors.CheckViolation, match=message):
            _raw(owner_db, statement, args)
        with pytest.raises(errors.Error):
            sql.execute(statement, args)
    owner_db.execute("RESET ROLE")
    assert station.certificate("ab").status == "revoked"  # type: ignore[union-attr]
    assert station.next_crl_number("card-ca", 1) == 3


def test_a_station_cannot_reopen_a_move_or_revive_an_operator(station: Registry, sql) -> None:  # type: ignore[no-untyped-def]
    station.begin_enrolment("op9", "Op", "131016", frozenset({"issue"}), None, "guid-9", None)
    station.complete_enrolment("op9", b"cert", None)
    station.set_operator_status("op9", "revoked", "left", None)
    with pytest.raises(errors.CheckViolation, match="operators going from revoked to active"):
        sql.execute("UPDATE operators SET status = 'active' WHERE operator_id = 'op9'")
    station.begin_enrolment("op8", "Clerk", "131016", frozenset({"issue"}), None, "guid-8", None)
    station.complete_enrolment("op8", b"cert", None)
    with pytest.raises(errors.CheckViolation, match="set at enrolment only"):  # escalation
        sql.execute("UPDATE operators SET scopes = 'issue,operator-admin' WHERE operator_id = "
                    "'op8'")
    station.set_operator_status("op8", "suspended", "leave", None)  # the code's ways work
    station.unlock_operator("op8", None)
    assert station.operator("op8").scope_set == {"issue"}  # type: ignore[union-attr]
    code = issue(station)
    resident = station.resident_of_code(code)[0]  # type: ignore[index]
    move = station.record_move(resident, "012025", dt.date.today(), "work")
    station.cancel_move(move.id, "changed plans")
    with pytest.raises(errors.CheckViolation, match="moves going from cancelled to planned"):
        sql.execute("UPDATE moves SET status = 'planned' WHERE id = %s", (move.id,))
    assert station.operator("op9").status == "revoked"  # type: ignore[union-attr]
    assert station.move(move.id).status == "cancelled"  # type: ignore[union-attr]


def _raw(db, statement: str, args: tuple) -> None:  # type: ignore[no-untyped-def]
    db.execute(statement.replace("%s", "?"), args)


def test_db_upgrade_by_a_station_names_the_owner(url: str, owner_db, station: Registry,  # type: ignore[no-untyped-def]
                                                 tmp_path, capsys) -> None:
    from tools.cli.main import run

    latest = len(MIGRATIONS)
    owner_db.execute(f"UPDATE schema_version SET version = {latest - 1}")
    as_station_url = f"{url}&options=-c%20role%3D{ROLE}"
    status = run(["--home", str(tmp_path / "home"), "--db", as_station_url, "db", "upgrade"])
    err = capsys.readouterr().err
    assert status == 2 and f"connected as {OWNER_ROLE}" in err and f"connection is {ROLE}" in err
    owner_db.execute(f"UPDATE schema_version SET version = {latest}")
    assert run(["--home", str(tmp_path / "home"), "--db", url, "db", "upgrade", "--json"]) == 0
    assert f'"schema_version": {latest}' in capsys.readouterr().out


def test_the_owner_adds_and_disables_stations_without_being_superuser(owner_db) -> None:  # type: ignore[no-untyped-def]
    """As `juki registry issue-station --admin-db` runs it: juki_owner (LOGIN CREATEROLE,
    .ci/postgres-up), not a superuser. A role with more than a station's powers is
    refused, never bound."""
    import secrets

    station_id, strong_id = (f"pg-owner-{secrets.token_hex(4)}" for _ in range(2))
    role, strong = station_role(station_id), station_role(strong_id)
    try:
        owner_db.execute(f'CREATE ROLE "{strong}" BYPASSRLS')  # made by a superuser
        owner_db.execute(f"SET SESSION AUTHORIZATION {OWNER_ROLE}")
        assert pg_roles.is_owner(owner_db)
        assert pg_roles.add_station(owner_db, station_id) == role
        assert owner_db.execute("SELECT rolcanlogin, rolsuper, rolcreaterole FROM pg_roles "
                                "WHERE rolname = ?", (role,)).fetchone() == (True, False, False)
        pg_roles.disable_station(owner_db, station_id)
        owner_db.execute("RESET SESSION AUTHORIZATION")
        with pytest.raises(RegistryError, match="bypassrls: not a station role"):
            pg_roles.add_station(owner_db, strong_id)
        assert [s["station_id"] for s in pg_roles.stations(owner_db)] == [station_id]
    finally:
        owner_db.execute("RESET SESSION AUTHORIZATION")
        for name in (role, strong):
            owner_db.execute(f'DROP ROLE IF EXISTS "{name}"')
