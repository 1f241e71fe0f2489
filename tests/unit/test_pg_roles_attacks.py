"""Attack (issue 14 security review): a role of the station shape made beforehand and
granted more (juki_owner, juki_admin, any other role: by mistake, or by whoever could
create roles). Binding it as a station would hand a station certificate those rights
(SET ROLE juki_owner: triggers off, the log rewritten). `add_station` refuses it and
binds nothing; a clean role is still added."""

from __future__ import annotations

import secrets

import pytest

from tools.registry import Registry, RegistryError, pg_roles
from tools.registry.roles import ADMIN_ROLE, OWNER_ROLE, station_role


@pytest.fixture
def owner_db(fresh_postgres: str):  # type: ignore[no-untyped-def]
    registry = Registry(fresh_postgres)
    yield registry.connection()
    registry.close()


@pytest.mark.parametrize("granted", [OWNER_ROLE, ADMIN_ROLE, "pg_read_server_files"])
def test_a_prepared_role_with_more_rights_is_never_bound(owner_db, granted: str) -> None:  # type: ignore[no-untyped-def]
    strong_id, clean_id = (f"pg-grant-{secrets.token_hex(4)}" for _ in range(2))
    strong = station_role(strong_id)
    try:
        owner_db.execute(f'CREATE ROLE "{strong}" LOGIN')
        owner_db.execute(f'GRANT {granted} TO "{strong}"')
        with pytest.raises(RegistryError, match=f"member of {granted}: not a station role"):
            pg_roles.add_station(owner_db, strong_id)
        assert all(s["station_id"] != strong_id for s in pg_roles.stations(owner_db))
        assert owner_db.execute(  # rolled back: not even in the stations group
            "SELECT pg_has_role(?, 'juki_stations', 'MEMBER')", (strong,)).fetchone()[0] is False
        assert pg_roles.add_station(owner_db, clean_id) == station_role(clean_id)
    finally:
        for name in (strong, station_role(clean_id)):
            owner_db.execute(f'DROP ROLE IF EXISTS "{name}"')


def test_a_prepared_role_that_others_can_act_as_is_never_bound(owner_db) -> None:  # type: ignore[no-untyped-def]
    """Another login role made a member of the station's role beforehand could SET ROLE
    to it and write as the station without its certificate."""
    station_id = f"pg-member-{secrets.token_hex(4)}"
    role, insider = station_role(station_id), f"insider_{secrets.token_hex(4)}"
    try:
        owner_db.execute(f'CREATE ROLE "{role}" LOGIN')
        owner_db.execute(f'CREATE ROLE "{insider}" LOGIN')
        owner_db.execute(f'GRANT "{role}" TO "{insider}"')
        with pytest.raises(RegistryError, match=f"{insider} are members of it"):
            pg_roles.add_station(owner_db, station_id)
        assert all(s["station_id"] != station_id for s in pg_roles.stations(owner_db))
        owner_db.execute(f'REVOKE "{role}" FROM "{insider}"')
        assert pg_roles.add_station(owner_db, station_id) == role
    finally:
        for name in (insider, role):
            owner_db.execute(f'DROP ROLE IF EXISTS "{name}"')


def test_a_connection_that_is_not_the_owner_is_told_so(fresh_postgres: str) -> None:
    """`issue-station` / `revoke-station` with an --admin-db that is a station's (or any
    role without the owner's rights): a plain error naming the role, nothing done."""
    from .pg_station import as_station

    station = as_station(fresh_postgres)
    db = station.connection()
    for action in (lambda: pg_roles.add_station(db, "pg-not-owner"),
                   lambda: pg_roles.disable_station(db, "pg-rules-a")):
        with pytest.raises(RegistryError, match=r"--admin-db connects as juki_station_pg_rules_a, "
                                                r"which may not .* connect as juki_owner"):
            action()
    assert [s["status"] for s in pg_roles.stations(db)] == ["enrolled"]
    station.close()
