"""Migration 10 (stations checking each other's log entries), PostgreSQL only.

The new tables (``log_signers``: certified log-signing keys; ``log_attestations``: each
append's signature) are the owner's, append-only for every role, like the log. A station
may add attestations and checkpoints only as itself: the station bound to its role
(``registry_stations``), as migration 8 binds its log entries. An attestation covers
entries that exist, name its station (so no station can lay its signature over another's
entries, which would make every verifier refuse them) and no other attestation's; and
an entry a station role appends must be covered by an attestation by COMMIT (one without
would stop every other station's checkpoints: they could not prove it). Whether the
signature verifies the database cannot tell (no Ed25519 in SQL): docs/deployment.md.
Only the registry operator (owner/admin) adds ``log_signers`` rows; a verifier trusts one
only when the station CA certificate it holds outside the database vouches for it
(``log_signers.py``).

This text is part of a released migration: never edit it, add a migration.
"""

from __future__ import annotations

from .roles import ADMIN_ROLE, OWNER_ROLE, STATIONS_GROUP

_STATION_OF_ROLE = f"""CREATE FUNCTION juki_station_of_role() RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_station text;
BEGIN
    IF NOT pg_has_role(current_user, '{STATIONS_GROUP}', 'MEMBER')
       OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RETURN NULL;  -- not a station (a superuser is "member" of every role)
    END IF;
    SELECT station_id INTO v_station FROM registry_stations
        WHERE role = current_user AND status = 'enrolled';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'role % is not an enrolled station of this registry', current_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN v_station;
END $$"""

_ATTESTATION = """CREATE FUNCTION juki_attestation_checked() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_station text := juki_station_of_role();
BEGIN
    IF v_station IS NOT NULL AND NEW.station_id IS DISTINCT FROM v_station THEN
        RAISE EXCEPTION 'station % (role %) may not sign appends as station %', v_station,
            current_user, NEW.station_id USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- the ranges are disjoint: only the one starting last before NEW.end_idx can overlap
    -- (one index probe, not a scan of every earlier attestation)
    IF NEW.start_idx < 0 OR NEW.end_idx <= NEW.start_idx
       OR NEW.end_idx > (SELECT coalesce(max(idx) + 1, 0) FROM provision_log)
       OR coalesce((SELECT end_idx FROM log_attestations WHERE start_idx < NEW.end_idx
                    ORDER BY start_idx DESC LIMIT 1), 0) > NEW.start_idx
       OR EXISTS (SELECT 1 FROM provision_log WHERE idx >= NEW.start_idx
                  AND idx < NEW.end_idx
                  AND (entry::jsonb ->> 'station') IS DISTINCT FROM NEW.station_id) THEN
        RAISE EXCEPTION 'the registry refuses an attestation of entries %..% by station %: '
            'they must exist, name that station and belong to no other attestation',
            NEW.start_idx, NEW.end_idx - 1, NEW.station_id USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$"""

_CHECKPOINT_SIGNER = """CREATE FUNCTION juki_checkpoint_signer() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_station text := juki_station_of_role();
BEGIN
    IF v_station IS NOT NULL AND NEW.signer IS DISTINCT FROM v_station THEN
        RAISE EXCEPTION 'station % (role %) may not add a checkpoint as station %',
            v_station, current_user, NEW.signer USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$"""

_ENTRY_ATTESTED = """CREATE FUNCTION juki_entry_attested() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF juki_station_of_role() IS NULL THEN
        RETURN NULL;  -- the registry operator's own writes are its own concern
    END IF;
    IF coalesce((SELECT end_idx FROM log_attestations WHERE start_idx <= NEW.idx
                 ORDER BY start_idx DESC LIMIT 1), -1) <= NEW.idx THEN
        RAISE EXCEPTION 'the registry refuses log entry %: no attestation of its station '
            'covers it at commit (the other stations could not prove it)', NEW.idx
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$"""

FUNCTIONS = ("juki_station_of_role()", "juki_attestation_checked()",
             "juki_checkpoint_signer()", "juki_entry_attested()")

_PIN = f"""DO $$
DECLARE
    s text := current_schema();
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY[{", ".join(f"'{name}'" for name in FUNCTIONS)}] LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO {OWNER_ROLE}', f);
        EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, %I, pg_temp', f, s);
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END $$"""

GRANTS = (
    f"GRANT SELECT ON log_signers TO {STATIONS_GROUP}",
    f"GRANT SELECT, INSERT ON log_attestations TO {STATIONS_GROUP}",
    f"GRANT SELECT, INSERT ON log_signers TO {ADMIN_ROLE}",
    f"GRANT SELECT, INSERT ON log_attestations TO {ADMIN_ROLE}",
    # called inside the triggers, which run as the inserting role
    f"GRANT EXECUTE ON FUNCTION juki_station_of_role() TO {STATIONS_GROUP}, {ADMIN_ROLE}",
)


def migration_statements() -> list[str]:
    """Migration 10's PostgreSQL statements after its tables, in order, escaped as
    migration 8's (``%`` doubled for the backend's parameters)."""
    plain = [
        "ALTER TABLE audit_checkpoints ADD COLUMN signer TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE audit_checkpoints DROP CONSTRAINT audit_checkpoints_pkey",
        "ALTER TABLE audit_checkpoints ADD PRIMARY KEY (signer, size)",
        f"ALTER TABLE log_signers OWNER TO {OWNER_ROLE}",
        f"ALTER TABLE log_attestations OWNER TO {OWNER_ROLE}",
        "REVOKE ALL ON log_signers, log_attestations FROM PUBLIC",
        _STATION_OF_ROLE, _ATTESTATION, _CHECKPOINT_SIGNER,
        *(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
          "FOR EACH ROW EXECUTE FUNCTION juki_append_only()"
          for table in ("log_signers", "log_attestations")),
        *(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
          "FOR EACH STATEMENT EXECUTE FUNCTION juki_append_only()"
          for table in ("log_signers", "log_attestations")),
        "CREATE TRIGGER log_attestations_checked BEFORE INSERT ON log_attestations "
        "FOR EACH ROW EXECUTE FUNCTION juki_attestation_checked()",
        "CREATE TRIGGER audit_checkpoints_signer BEFORE INSERT ON audit_checkpoints "
        "FOR EACH ROW EXECUTE FUNCTION juki_checkpoint_signer()",
        _ENTRY_ATTESTED,
        # at COMMIT: the station code inserts the entries first, their attestation after
        "CREATE CONSTRAINT TRIGGER provision_log_attested AFTER INSERT ON provision_log "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION juki_entry_attested()",
        _PIN, *GRANTS,
    ]
    for sql in plain:
        assert "?" not in sql and "{" not in sql and "}" not in sql, sql
    return [sql.replace("%", "%%") for sql in plain]
