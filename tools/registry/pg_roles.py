"""Station roles of a shared PostgreSQL registry, for the registry operator's commands
(``juki registry ...``): one LOGIN role per station, member of ``juki_stations``, bound
in ``registry_stations`` to the station id its log entries must name (migration 8's
trigger checks every provision-log insert against that binding).

Roles are cluster-wide, bindings are per database. A station id is never reused once
revoked (its certificate is on the CRL; its entries stay in the log under that id).
"""

from __future__ import annotations

from .backend import Backend
from .records import RegistryError, now
from .roles import OWNER_ROLE, STATION_ROLE_PATTERN, STATIONS_GROUP, station_role


def _postgres(db: Backend) -> None:
    if db.dialect != "postgresql":
        raise RegistryError("station roles need a PostgreSQL registry (this one is "
                            f"{db.dialect})")


def _administrative(db: Backend, what: str) -> None:
    """Only the owner (or a superuser) adds and disables stations: said plainly, before a
    permission error halfway through."""
    if not is_owner(db):
        user = db.execute("SELECT current_user").fetchone()[0]
        raise RegistryError(f"--admin-db connects as {user}, which may not {what}: connect as "
                            f"{OWNER_ROLE} (peer authentication over the local socket, "
                            "docs/deployment.md)")


def _quoted(role: str) -> str:
    """The role as an SQL identifier (checked: letters, digits and ``_`` only)."""
    if not STATION_ROLE_PATTERN.match(role):
        raise RegistryError(f"{role!r} is not a station role name")
    return f'"{role}"'


def is_owner(db: Backend) -> bool:
    """Whether this connection may migrate the registry: a superuser, or a member of
    ``juki_owner`` (always True on SQLite: the file's owner is its owner)."""
    if db.dialect != "postgresql":
        return True
    row = db.execute(
        "SELECT r.rolsuper OR EXISTS (SELECT 1 FROM pg_roles o WHERE o.rolname = ? AND "
        "pg_has_role(current_user, o.oid, 'MEMBER')) FROM pg_roles r "
        "WHERE r.rolname = current_user", (OWNER_ROLE,)).fetchone()
    return bool(row and row[0])


def roles_configured(db: Backend) -> bool:
    """Whether the cluster has the registry's roles (migration 8 made or found them)."""
    if db.dialect != "postgresql":
        return False
    return db.execute("SELECT 1 FROM pg_roles WHERE rolname = ?",
                      (OWNER_ROLE,)).fetchone() is not None


def add_station(db: Backend, station_id: str) -> str:
    """The station's LOGIN role (created if missing, member of ``juki_stations``, no
    other power) and its binding to ``station_id``; idempotent. Refused for a station
    id revoked before, or a role already bound to another id. In a transaction of its
    own (``db`` must not be inside one)."""
    _postgres(db)
    _administrative(db, "add stations")
    role = station_role(station_id)
    name = _quoted(role)
    db.begin_write()
    try:
        row = db.execute("SELECT station_id, status FROM registry_stations WHERE station_id = ? "
                         "OR role = ?", (station_id, role)).fetchone()
        if row is not None and row[0] != station_id:
            raise RegistryError(f"role {role} is already bound to station {row[0]}")
        if row is not None and row[1] == "revoked":
            raise RegistryError(f"station {station_id} was revoked: a station id is never "
                                "reused (enrol the station under a new id)")
        db.execute(f"DO $$ BEGIN CREATE ROLE {name} LOGIN; EXCEPTION WHEN duplicate_object "
                   "OR unique_violation THEN NULL; END $$")
        # juki_owner (CREATEROLE, not superuser) may not name the superuser attributes
        # even to clear them: a role with any of them is refused instead
        db.execute(f"ALTER ROLE {name} LOGIN NOCREATEDB NOCREATEROLE INHERIT")
        if db.execute("SELECT rolsuper OR rolreplication OR rolbypassrls FROM pg_roles "
                      "WHERE rolname = ?", (role,)).fetchone()[0]:
            raise RegistryError(f"role {role} exists with superuser, replication or "
                                "bypassrls: not a station role")
        db.execute(f"GRANT {STATIONS_GROUP} TO {name}")
        other = db.execute(  # a pre-existing role granted juki_owner, juki_admin, another
            "SELECT string_agg(g.rolname, ', ' ORDER BY g.rolname) FROM pg_auth_members m "
            "JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member "
            "WHERE u.rolname = ? AND g.rolname <> ?", (role, STATIONS_GROUP)).fetchone()[0]
        if other:  # station's role... would write with those rights (and SET ROLE to them)
            raise RegistryError(f"role {role} exists and is a member of {other}: not a "
                                "station role (revoke those first)")
        members = db.execute(  # roles that could SET ROLE to the station and write as it
            "SELECT string_agg(u.rolname, ', ' ORDER BY u.rolname) FROM pg_auth_members m "
            "JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member "
            "WHERE g.rolname = ?", (role,)).fetchone()[0]
        if members:
            raise RegistryError(f"role {role} exists and {members} are members of it (they "
                                "could act as this station): not a station role (revoke "
                                "those first)")
        if row is None:
            db.execute("INSERT INTO registry_stations (station_id, role, status, enrolled_at) "
                       "VALUES (?, ?, 'enrolled', ?)", (station_id, role, now()))
    except BaseException:
        db.rollback()
        raise
    db.commit()
    return role


def disable_station(db: Backend, station_id: str) -> str:
    """The station may no longer log in (NOLOGIN) and its binding is revoked (an open
    session of it can no longer write log entries); returns its role."""
    _postgres(db)
    _administrative(db, "revoke stations")
    role = station_role(station_id)
    db.begin_write()
    try:
        cursor = db.execute("UPDATE registry_stations SET status = 'revoked', revoked_at = ? "
                            "WHERE station_id = ? AND status = 'enrolled'", (now(), station_id))
        if cursor.rowcount != 1:
            raise RegistryError(f"station {station_id} is not an enrolled station of this "
                                "registry")
        db.execute(f"ALTER ROLE {_quoted(role)} NOLOGIN")
    except BaseException:
        db.rollback()
        raise
    db.commit()
    _end_sessions(db, role)
    return role


def _end_sessions(db: Backend, role: str) -> None:
    """End the role's open sessions, in every database of the cluster: NOLOGIN and the
    CRL stop only new connections, and a station is revoked because it is not trusted
    any more (an open session could still change cards, identities, operators)."""
    try:
        left = db.execute(
            "SELECT count(*) FILTER (WHERE NOT pg_terminate_backend(pid, 5000)) FROM "
            "pg_stat_activity WHERE usename = ? AND pid <> pg_backend_pid()",
            (role,)).fetchone()[0]
    except Exception as exc:  # psycopg's InsufficientPrivilege, without importing it
        raise RegistryError(
            f"station role {role} is disabled but its open sessions could not be ended "
            f"({str(exc).splitlines()[0]}): as a superuser, end them (SELECT "
            f"pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}') "
            f"and GRANT pg_signal_backend TO {OWNER_ROLE} (docs/deployment.md)") from None
    if left:
        raise RegistryError(f"station role {role} is disabled but {left} of its sessions "
                            "did not end within 5 s: end them as a superuser (SELECT "
                            "pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename "
                            f"= '{role}')")


def stations(db: Backend) -> list[dict[str, str | None]]:
    """The bindings: station id, role, status, enrolled_at, revoked_at."""
    keys = ("station_id", "role", "status", "enrolled_at", "revoked_at")
    rows = db.execute(f"SELECT {', '.join(keys)} FROM registry_stations ORDER BY station_id")
    return [dict(zip(keys, row, strict=True)) for row in rows]
