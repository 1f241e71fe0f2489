"""The SQL of migration 8 on PostgreSQL: the registry enforces its own rules, so a
station (or anyone holding a station's connection) cannot do in SQL what the code would
refuse. Why in the database and not only in the code: a shared registry is reached by
every station's process; one compromised station must not be able to rewrite the log,
revive a revoked card or write as another station (docs/decisions.md, issue 14).

- roles ``juki_owner`` / ``juki_admin`` / ``juki_stations`` (created if missing);
  every table owned by ``juki_owner``; nothing for PUBLIC;
- ``juki_stations`` gets exactly what the station code runs (``STATION_GRANTS``), with
  column grants where a table is updated but a column must not be (``cards.status``,
  ``record_codes.status``: those change only through the checked functions);
- the append-only tables refuse UPDATE, DELETE and TRUNCATE by trigger, for every role;
- every status change (cards, record codes, certificates, operators, moves, card
  operations) must be one of the registry's transitions, for every role (a revoked card,
  certificate or operator stays revoked), and CRL numbers only grow; an operator's
  scopes, card and identity change only while enrolling (no in-place escalation);
- ``juki_card_status`` / ``juki_record_code_status``: SECURITY DEFINER functions owned
  by ``juki_owner``, ``search_path`` pinned, allowing only the registry's transitions;
- a provision-log entry must name the station bound to the writing station role.

This text is part of a released migration: never edit it, add a migration.
"""

from __future__ import annotations

from .roles import ADMIN_ROLE, OWNER_ROLE, STATIONS_GROUP

APPEND_ONLY = ("provision_log", "merkle_nodes", "audit_checkpoints", "log_batches",
               "card_events", "operator_events")
# (from, to) as tools.registry.registry (issuing → active | failed, then TRANSITIONS);
# a frozen copy: the test suite checks that the two agree
CARD_TRANSITIONS = (("issuing", "active"), ("issuing", "failed"), ("active", "suspended"),
                    ("suspended", "active"), ("active", "revoked"), ("suspended", "revoked"),
                    ("active", "expired"), ("suspended", "expired"))
CODE_TRANSITIONS = (("pending", "active"), ("active", "retired"), ("pending", "abandoned"))
# Every status change any role makes (the owner too) must be one of these: a trigger per
# table (cards and record codes also change only through their functions, above).
STATUS_MOVES = {
    "cards": CARD_TRANSITIONS,
    "record_codes": CODE_TRANSITIONS,
    "certificates": (("valid", "hold"), ("hold", "valid"), ("valid", "revoked"),
                     ("hold", "revoked")),
    "operators": (("enrolling", "active"), ("enrolling", "failed"), ("failed", "enrolling"),
                  ("active", "suspended"), ("suspended", "active"), ("active", "revoked"),
                  ("suspended", "revoked")),
    "moves": (("planned", "moved-in"), ("planned", "completed"), ("planned", "cancelled"),
              ("planned", "expired"), ("moved-in", "completed"), ("moved-in", "lapsed")),
    "card_operations": (("pending", "interrupted"), ("pending", "done"),
                        ("interrupted", "done"), ("pending", "rolled-back"),
                        ("interrupted", "rolled-back")),
}

# What the station code (tools/registry, tools/audit) runs, table by table.
STATION_GRANTS = {
    "schema_version": "SELECT",
    "cards": "SELECT, INSERT, UPDATE (municipality_code, updated_at)",
    "card_events": "SELECT, INSERT",
    "residents": "SELECT, INSERT",
    "record_codes": "SELECT, INSERT",
    "resident_identity": "SELECT, INSERT, UPDATE, DELETE",
    "operators": "SELECT, INSERT, UPDATE",
    "operator_events": "SELECT, INSERT",
    "login_failures": "SELECT, INSERT, DELETE",
    "station_sessions": "SELECT, INSERT, UPDATE, DELETE",
    "access_denials": "SELECT, INSERT",
    "recipients": "SELECT",
    "recipient_purposes": "SELECT",
    "provision_log": "SELECT, INSERT",
    "merkle_nodes": "SELECT, INSERT",
    "audit_checkpoints": "SELECT, INSERT",
    "log_batches": "SELECT, INSERT",
    "certificates": "SELECT, INSERT, UPDATE (status, reason, revoked_at)",
    "crl_numbers": "SELECT, INSERT, UPDATE (number)",
    "moves": "SELECT, INSERT, UPDATE",
    "card_operations": "SELECT, INSERT, UPDATE",
    "registry_stations": "SELECT",
}
# The registry operator's administrative role: the recipient table, and the event of
# its change (an entry in the provision log).
ADMIN_GRANTS = {
    "schema_version": "SELECT",
    "recipients": "SELECT, INSERT, UPDATE, DELETE",
    "recipient_purposes": "SELECT, INSERT, UPDATE, DELETE",
    "provision_log": "SELECT, INSERT",
    "merkle_nodes": "SELECT, INSERT",
    "audit_checkpoints": "SELECT",
    "log_batches": "SELECT, INSERT",
    "registry_stations": "SELECT",
}

_ROLES = f"""DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{OWNER_ROLE}') THEN
        CREATE ROLE {OWNER_ROLE} NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ADMIN_ROLE}') THEN
        CREATE ROLE {ADMIN_ROLE} NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{STATIONS_GROUP}') THEN
        CREATE ROLE {STATIONS_GROUP} NOLOGIN;
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN
        NULL;  -- another database of the cluster created them at the same moment
    WHEN insufficient_privilege THEN
        RAISE EXCEPTION 'migration 8 needs the roles {OWNER_ROLE}, {ADMIN_ROLE} and '
            '{STATIONS_GROUP}: create them as a superuser (docs/deployment.md) or run '
            '`juki db upgrade` as a superuser' USING ERRCODE = 'insufficient_privilege';
END $$"""

_OWNERSHIP = f"""DO $$
DECLARE
    s text := current_schema();
    t text;
BEGIN
    FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = s LOOP
        EXECUTE format('ALTER TABLE %I.%I OWNER TO {OWNER_ROLE}', s, t);
    END LOOP;
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM PUBLIC', s);
    EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA %I FROM PUBLIC', s);
    EXECUTE format('REVOKE ALL ON ALL FUNCTIONS IN SCHEMA %I FROM PUBLIC', s);
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO {STATIONS_GROUP}, {ADMIN_ROLE}', s);
    EXECUTE format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA %I TO {STATIONS_GROUP}', s);
END $$"""

_APPEND_ONLY_FUNCTION = """CREATE FUNCTION juki_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the registry refuses % on %: the table is append-only', TG_OP,
        TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$"""

_CARDS_START_ISSUING = """CREATE FUNCTION juki_card_starts_issuing() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM 'issuing' THEN
        RAISE EXCEPTION 'the registry refuses a card row created % (a card starts issuing; '
            'its status changes through juki_card_status)', NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$"""


_STATUS_MOVES_FUNCTION = """CREATE FUNCTION juki_status_moves() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status
       AND NOT (OLD.status || '>' || NEW.status) = ANY (TG_ARGV) THEN
        RAISE EXCEPTION 'the registry refuses % going from % to %', TG_TABLE_NAME,
            OLD.status, NEW.status USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$"""

_CRL_NUMBER_GROWS = """CREATE FUNCTION juki_crl_number_grows() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.number <= OLD.number THEN
        RAISE EXCEPTION 'the registry refuses CRL number % after % (% v%): CRL numbers only '
            'grow', NEW.number, OLD.number, OLD.issuer_role, OLD.issuer_version
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$"""


_OPERATOR_FIXED = """CREATE FUNCTION juki_operator_fixed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status NOT IN ('enrolling', 'failed')
       AND (NEW.name, NEW.municipality_code, NEW.scopes, NEW.unix_user, NEW.card_guid,
            NEW.certificate) IS DISTINCT FROM (OLD.name, OLD.municipality_code, OLD.scopes,
            OLD.unix_user, OLD.card_guid, OLD.certificate) THEN
        RAISE EXCEPTION 'the registry refuses changing operator % (%): scopes, card and '
            'identity are set at enrolment only', OLD.operator_id, OLD.status
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$"""


def _pairs(pairs: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(f"('{a}', '{b}')" for a, b in pairs)


_CARD_STATUS = f"""CREATE FUNCTION juki_card_status(p_serial text, p_from text, p_to text,
    p_reason text, p_certificate bytea, p_failure text, p_at text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    v_id bigint;
    v_status text;
BEGIN
    IF (p_from, p_to) NOT IN ({_pairs(CARD_TRANSITIONS)}) THEN
        RAISE EXCEPTION 'the registry refuses card % going from % to %', p_serial, p_from,
            p_to USING ERRCODE = 'check_violation';
    END IF;
    SELECT id, status INTO v_id, v_status FROM cards WHERE serial = p_serial
        ORDER BY id DESC LIMIT 1 FOR UPDATE;
    IF NOT FOUND OR v_status IS DISTINCT FROM p_from THEN
        RETURN 0;
    END IF;
    UPDATE cards SET status = p_to, updated_at = p_at,
        status_reason = CASE WHEN p_from = 'issuing' THEN status_reason ELSE p_reason END,
        certificate = CASE WHEN p_to = 'active' AND p_from = 'issuing' THEN p_certificate
                           ELSE certificate END,
        failure = CASE WHEN p_to = 'failed' THEN p_failure ELSE failure END
        WHERE id = v_id;
    RETURN 1;
END $$"""

_CODE_STATUS = f"""CREATE FUNCTION juki_record_code_status(p_code text, p_resident bigint,
    p_from text, p_to text, p_reason text, p_at text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    n integer;
BEGIN
    IF (p_from, p_to) NOT IN ({_pairs(CODE_TRANSITIONS)}) THEN
        RAISE EXCEPTION 'the registry refuses a record code going from % to %', p_from, p_to
            USING ERRCODE = 'check_violation';
    END IF;
    UPDATE record_codes SET status = p_to,
        retired_at = CASE WHEN p_to IN ('retired', 'abandoned') THEN p_at ELSE retired_at END,
        reason = CASE WHEN p_to = 'retired' THEN p_reason ELSE reason END
        WHERE code = p_code AND status = p_from
          AND (p_resident IS NULL OR resident_id = p_resident);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$"""

_WRITES_AS_ITSELF = f"""CREATE FUNCTION juki_station_writes_as_itself() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_station text;
    v_named text := NEW.entry::jsonb ->> 'station';
BEGIN
    IF NOT pg_has_role(current_user, '{STATIONS_GROUP}', 'MEMBER')
       OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RETURN NEW;  -- not a station (a superuser is "member" of every role)
    END IF;
    SELECT station_id INTO v_station FROM registry_stations
        WHERE role = current_user AND status = 'enrolled';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'role % is not an enrolled station of this registry', current_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF v_named IS DISTINCT FROM v_station THEN
        RAISE EXCEPTION 'station % (role %) may not write a log entry naming station %',
            v_station, current_user, coalesce(v_named, '(none)')
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$"""

FUNCTIONS = {  # name(argument types) -> who may execute it
    "juki_append_only()": (),
    "juki_card_starts_issuing()": (),
    "juki_station_writes_as_itself()": (),
    "juki_status_moves()": (),
    "juki_crl_number_grows()": (),
    "juki_operator_fixed()": (),
    "juki_card_status(text, text, text, text, bytea, text, text)": (STATIONS_GROUP,),
    "juki_record_code_status(text, bigint, text, text, text, text)": (STATIONS_GROUP,),
}

_PIN_FUNCTIONS = f"""DO $$
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


def _triggers() -> list[str]:
    found = []
    for table in APPEND_ONLY:
        found.append(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                     "FOR EACH ROW EXECUTE FUNCTION juki_append_only()")
        found.append(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                     "FOR EACH STATEMENT EXECUTE FUNCTION juki_append_only()")
    found.append("CREATE TRIGGER provision_log_station BEFORE INSERT ON provision_log "
                 "FOR EACH ROW EXECUTE FUNCTION juki_station_writes_as_itself()")
    found.append("CREATE TRIGGER cards_start_issuing BEFORE INSERT ON cards "
                 "FOR EACH ROW EXECUTE FUNCTION juki_card_starts_issuing()")
    for table, pairs in STATUS_MOVES.items():
        moves = ", ".join(f"'{a}>{b}'" for a, b in pairs)
        found.append(f"CREATE TRIGGER {table}_status_moves BEFORE UPDATE OF status ON {table} "
                     f"FOR EACH ROW EXECUTE FUNCTION juki_status_moves({moves})")
    found.append("CREATE TRIGGER crl_numbers_grow BEFORE UPDATE ON crl_numbers "
                 "FOR EACH ROW EXECUTE FUNCTION juki_crl_number_grows()")
    found.append("CREATE TRIGGER operators_fixed BEFORE UPDATE ON operators "
                 "FOR EACH ROW EXECUTE FUNCTION juki_operator_fixed()")
    return found


def _grants() -> list[str]:
    found = []
    for grants, role in ((STATION_GRANTS, STATIONS_GROUP), (ADMIN_GRANTS, ADMIN_ROLE)):
        found += [f"GRANT {what} ON {table} TO {role}" for table, what in grants.items()]
    for name, roles in FUNCTIONS.items():
        found += [f"GRANT EXECUTE ON FUNCTION {name} TO {role}" for role in roles]
    return found


def _escaped(sql: str) -> str:
    """As a migration statement: ``statements_for`` formats ``{…}`` and the PostgreSQL
    backend passes parameters (so ``%`` is doubled); a ``?`` would become one."""
    assert "?" not in sql and "{" not in sql and "}" not in sql, sql
    return sql.replace("%", "%%")


def migration_statements() -> list[str]:
    """Migration 8's PostgreSQL statements, in order (after ``registry_stations``)."""
    plain = [_ROLES, _APPEND_ONLY_FUNCTION, _CARDS_START_ISSUING, _CARD_STATUS, _CODE_STATUS,
             _WRITES_AS_ITSELF, _STATUS_MOVES_FUNCTION, _CRL_NUMBER_GROWS, _OPERATOR_FIXED,
             *_triggers(),
             _OWNERSHIP, _PIN_FUNCTIONS, *_grants()]
    return [_escaped(sql) for sql in plain]
