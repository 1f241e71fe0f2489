"""Migration 9 (security review of issue 14), PostgreSQL only.

Migration 8 binds provision-log entries to their station, but the log's companions take
any row from any station: one station could halt every station's appends (a bogus
``merkle_nodes`` or ``log_batches`` row at the next index makes the honest INSERT fail
on its primary key; an entry of its own at index 2^63-1 overflows ``MAX(idx) + 1``),
and none of those tables says who wrote the row. Here the database accepts only rows
that are what the log says, for every role:

- ``provision_log``: an entry's index is the next one (no gap, no overflow);
- ``merkle_nodes``: a leaf is SHA-256(0x00 || its entry), an inner node SHA-256(0x01 ||
  left || right) of its stored children (tools.audit.merkle);
- ``log_batches``: its entries exist, carry no MAC of their own and the row's key
  version, and belong to no other batch;
- ``audit_checkpoints``: not beyond the log (its signature is the verifier's to check);
- ``operators`` start ``enrolling`` (as cards start ``issuing``: not inserted active
  with any scopes, skipping the enrolment and its events); functions made later are
  not EXECUTE for PUBLIC.
"""

from __future__ import annotations

from .roles import OWNER_ROLE

_NEXT_INDEX = """CREATE FUNCTION juki_log_next_index() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_next bigint := (SELECT coalesce(max(idx) + 1, 0) FROM provision_log);
BEGIN
    IF NEW.idx IS DISTINCT FROM v_next THEN
        RAISE EXCEPTION 'the registry refuses log entry %: the next index is %', NEW.idx,
            v_next USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$"""

_MERKLE_NODE = """CREATE FUNCTION juki_merkle_node_checked() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_entry text;
    v_left bytea;
    v_right bytea;
BEGIN
    IF NEW.level = 0 THEN
        SELECT entry INTO v_entry FROM provision_log WHERE idx = NEW.position;
        IF NOT FOUND OR NEW.hash IS DISTINCT FROM
                sha256('\\x00'::bytea || convert_to(v_entry, 'UTF8')) THEN
            RAISE EXCEPTION 'the registry refuses Merkle leaf %: not the hash of entry %',
                NEW.position, NEW.position USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END IF;
    SELECT hash INTO v_left FROM merkle_nodes
        WHERE level = NEW.level - 1 AND position = 2 * NEW.position;
    SELECT hash INTO v_right FROM merkle_nodes
        WHERE level = NEW.level - 1 AND position = 2 * NEW.position + 1;
    IF v_left IS NULL OR v_right IS NULL
       OR NEW.hash IS DISTINCT FROM sha256('\\x01'::bytea || v_left || v_right) THEN
        RAISE EXCEPTION 'the registry refuses Merkle node (%, %): not the hash of its '
            'children', NEW.level, NEW.position USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$"""

_LOG_BATCH = """CREATE FUNCTION juki_log_batch_checked() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.start_idx < 0 OR NEW.end_idx <= NEW.start_idx
       OR (SELECT count(*) FROM provision_log WHERE idx >= NEW.start_idx
           AND idx < NEW.end_idx AND mac = '\\x'::bytea AND mac_version = NEW.mac_version)
          <> NEW.end_idx - NEW.start_idx
       OR EXISTS (SELECT 1 FROM log_batches WHERE start_idx < NEW.end_idx
                  AND end_idx > NEW.start_idx) THEN
        RAISE EXCEPTION 'the registry refuses a log_batches row for entries %..%: they must '
            'exist, carry no MAC of their own and belong to no other batch',
            NEW.start_idx, NEW.end_idx - 1 USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$"""

_CHECKPOINT = """CREATE FUNCTION juki_checkpoint_checked() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.size < 0 OR NEW.size > (SELECT coalesce(max(idx) + 1, 0) FROM provision_log) THEN
        RAISE EXCEPTION 'the registry refuses a checkpoint of size % beyond the log',
            NEW.size USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$"""

_STARTS = """CREATE FUNCTION juki_row_starts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM TG_ARGV[0] THEN
        RAISE EXCEPTION 'the registry refuses a % row created % (it starts %)',
            TG_TABLE_NAME, NEW.status, TG_ARGV[0] USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$"""

FUNCTIONS = ("juki_log_next_index()", "juki_merkle_node_checked()",
             "juki_log_batch_checked()", "juki_checkpoint_checked()", "juki_row_starts()")

TRIGGERS = (
    ("provision_log_next_index", "provision_log", "juki_log_next_index()"),
    ("merkle_nodes_checked", "merkle_nodes", "juki_merkle_node_checked()"),
    ("log_batches_checked", "log_batches", "juki_log_batch_checked()"),
    ("audit_checkpoints_checked", "audit_checkpoints", "juki_checkpoint_checked()"),
    ("operators_start_enrolling", "operators", "juki_row_starts('enrolling')"),
)  # (record codes: a new resident's first code is inserted active, registry.py)

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
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER_ROLE} IN SCHEMA %I '
                   'REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC', s);
END $$"""


def migration_statements() -> list[str]:
    """Migration 9's PostgreSQL statements, in order, escaped as migration
    8's (``%`` doubled for the backend's parameters)."""
    plain = [_NEXT_INDEX, _MERKLE_NODE, _LOG_BATCH, _CHECKPOINT, _STARTS,
             *(f"CREATE TRIGGER {name} BEFORE INSERT ON {table} FOR EACH ROW EXECUTE "
               f"FUNCTION {function}" for name, table, function in TRIGGERS),
             _PIN]
    for sql in plain:
        assert "?" not in sql and "{" not in sql and "}" not in sql, sql
    return [sql.replace("%", "%%") for sql in plain]
