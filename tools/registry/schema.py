"""Versioned migrations of the registry schema. A migration is a list of statements,
applied in one transaction with the version bump; never edit a released one.
``{ID}`` and ``{BLOB}`` become each database's own types (``statements_for``). A
statement that differs between the databases is a dict ``{dialect: sql}``; a dialect
missing from it runs nothing (PostgreSQL's roles and grants have no SQLite form)."""

from __future__ import annotations

from . import pg_attest_rules, pg_log_rules, pg_rules

CARD_STATUSES = ("issuing", "active", "suspended", "revoked", "expired", "failed")
OPERATOR_STATUSES = ("enrolling", "active", "suspended", "revoked", "failed")
REVOKE_REASONS = ("lost", "stolen", "returned", "damaged", "superseded", "deceased", "moved-out")
# Why a certificate (not a card) is revoked: the card's reasons, and the counter's own
# (a change of the 4 information the signature certificate carries; a renewal).
CERTIFICATE_REVOKE_REASONS = (*REVOKE_REASONS, "four-info-changed", "renewed", "key-lost",
                              "lapsed")  # lapsed: continued use not registered after a move
CERTIFICATE_KINDS = ("card", "jpki-auth", "jpki-sign", "operator")
# planned: move-out recorded; moved-in: the move-in notified, the card not yet rewritten
# (its continued use is due by continued_use_deadline); completed: card rewritten;
# cancelled: by the old municipality; expired: the move-in deadline passed; lapsed: the
# continued-use deadline passed (the card is marked expired, reason "lapsed").
MOVE_STATUSES = ("planned", "moved-in", "completed", "cancelled", "expired", "lapsed")
# pending: started (its owner host:pid is working on it); interrupted: it failed or its
# owner died mid-way, to be finished or rolled back by `juki issue recover`.
OPERATION_STATUSES = ("pending", "interrupted", "done", "rolled-back")

MIGRATIONS: list[list[str | dict[str, str]]] = [
    [  # 1: the walking skeleton
        """CREATE TABLE cards (
            serial TEXT PRIMARY KEY,
            profile TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('issuing', 'active', 'failed')),
            resident_code TEXT,
            municipality_code TEXT,
            expiry TEXT,
            certificate {BLOB},
            failure TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL)""",
        "CREATE INDEX cards_resident_code ON cards(resident_code)",
    ],
    [  # 2: card life cycle, residents and their record codes, an event log
        """CREATE TABLE residents (
            id {ID},
            created_at TEXT NOT NULL)""",
        """CREATE TABLE record_codes (
            code TEXT PRIMARY KEY,
            resident_id INTEGER NOT NULL REFERENCES residents(id),
            status TEXT NOT NULL CHECK (status IN ('pending', 'active', 'retired', 'abandoned')),
            assigned_at TEXT NOT NULL,
            retired_at TEXT,
            reason TEXT)""",
        """CREATE UNIQUE INDEX one_active_code_per_resident
            ON record_codes(resident_id) WHERE status = 'active'""",
        f"""CREATE TABLE cards_v2 (
            id {{ID}},
            serial TEXT NOT NULL,
            profile TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ({", ".join(f"'{s}'" for s in CARD_STATUSES)})),
            status_reason TEXT,
            resident_id INTEGER REFERENCES residents(id),
            resident_code TEXT,
            municipality_code TEXT,
            expiry TEXT,
            certificate {{BLOB}},
            failure TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL)""",
        """INSERT INTO cards_v2 (serial, profile, status, resident_code, municipality_code, expiry,
            certificate, failure, created_at, updated_at)
            SELECT serial, profile, status, resident_code, municipality_code, expiry, certificate,
                   failure, created_at, updated_at FROM cards""",
        "DROP TABLE cards",
        "ALTER TABLE cards_v2 RENAME TO cards",
        "CREATE INDEX cards_serial ON cards(serial)",
        "CREATE INDEX cards_resident ON cards(resident_id)",
        """CREATE UNIQUE INDEX one_live_row_per_card ON cards(serial)
            WHERE status IN ('issuing', 'active', 'suspended')""",
        """CREATE TABLE card_events (
            id {ID},
            serial TEXT NOT NULL,
            at TEXT NOT NULL,
            from_status TEXT,
            to_status TEXT NOT NULL,
            reason TEXT)""",
        "CREATE INDEX card_events_serial ON card_events(serial)",
    ],
    [  # 3: who is issuing a card (host:pid), so an interrupted issuance can be recognised
        "ALTER TABLE cards ADD COLUMN owner TEXT",
    ],
    [  # 4: operators (PIV cards, scopes), their events, failed logins, denied commands
        f"""CREATE TABLE operators (
            operator_id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            municipality_code TEXT NOT NULL,
            scopes TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ({", ".join(f"'{s}'" for s in OPERATOR_STATUSES)})),
            status_reason TEXT,
            unix_user TEXT UNIQUE,
            card_guid TEXT,
            certificate {{BLOB}},
            locked_at TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL)""",
        """CREATE UNIQUE INDEX one_operator_per_card ON operators(card_guid)
            WHERE status IN ('enrolling', 'active', 'suspended')""",
        """CREATE TABLE operator_events (
            id {ID},
            operator_id TEXT NOT NULL,
            at TEXT NOT NULL,
            event TEXT NOT NULL,
            detail TEXT,
            actor TEXT)""",
        "CREATE INDEX operator_events_operator ON operator_events(operator_id)",
        """CREATE TABLE login_failures (
            id {ID},
            operator_id TEXT NOT NULL,
            at TEXT NOT NULL,
            reason TEXT NOT NULL)""",
        "CREATE INDEX login_failures_operator ON login_failures(operator_id, at)",
        """CREATE TABLE station_sessions (
            station TEXT PRIMARY KEY,
            session_id TEXT NOT NULL,
            operator_id TEXT NOT NULL,
            started_at TEXT NOT NULL)""",
        """CREATE TABLE access_denials (
            id {ID},
            at TEXT NOT NULL,
            station TEXT NOT NULL,
            operator_id TEXT,
            command TEXT NOT NULL,
            scope TEXT,
            reason TEXT NOT NULL)""",
    ],
    [  # 5: the provision record: recipients and purposes, an append-only Merkle-tree log,
       # signed checkpoints, and the identity information a resident can ask to see
        """CREATE TABLE recipients (
            recipient_id TEXT PRIMARY KEY,
            name TEXT NOT NULL)""",
        """CREATE TABLE recipient_purposes (
            recipient_id TEXT NOT NULL REFERENCES recipients(recipient_id),
            code TEXT NOT NULL,
            description TEXT NOT NULL,
            PRIMARY KEY (recipient_id, code))""",
        """CREATE TABLE provision_log (
            idx BIGINT PRIMARY KEY,
            entry TEXT NOT NULL,
            kind TEXT NOT NULL,
            resident_id BIGINT,
            mac {BLOB} NOT NULL,
            mac_version INTEGER NOT NULL)""",
        "CREATE INDEX provision_log_resident ON provision_log(resident_id, idx)",
        """CREATE TABLE merkle_nodes (
            level INTEGER NOT NULL,
            position BIGINT NOT NULL,
            hash {BLOB} NOT NULL,
            PRIMARY KEY (level, position))""",
        """CREATE TABLE audit_checkpoints (
            size BIGINT PRIMARY KEY,
            root {BLOB} NOT NULL,
            at TEXT NOT NULL,
            key_label TEXT NOT NULL,
            signature {BLOB} NOT NULL)""",
        """CREATE TABLE resident_identity (
            resident_id BIGINT PRIMARY KEY,
            name TEXT NOT NULL,
            name_kana TEXT,
            birth_date TEXT NOT NULL,
            sex TEXT NOT NULL,
            address TEXT NOT NULL,
            updated_at TEXT NOT NULL)""",
    ],
    [  # 6: counter work on issued cards (issue 13): every certificate the CAs issued (for
       # CRLs), CRL numbers, planned and completed moves, and the journal of card operations
        f"""CREATE TABLE certificates (
            serial_number TEXT PRIMARY KEY,
            issuer_role TEXT NOT NULL,
            issuer_version INTEGER NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ({", ".join(f"'{k}'" for k in CERTIFICATE_KINDS)})),
            card_serial TEXT,
            operator_id TEXT,
            not_after TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('valid', 'hold', 'revoked')),
            reason TEXT,
            revoked_at TEXT,
            der {{BLOB}} NOT NULL,
            issued_at TEXT NOT NULL)""",
        "CREATE INDEX certificates_card ON certificates(card_serial)",
        "CREATE INDEX certificates_operator ON certificates(operator_id)",
        "CREATE INDEX certificates_issuer ON certificates(issuer_role, issuer_version, status)",
        """CREATE TABLE crl_numbers (
            issuer_role TEXT NOT NULL,
            issuer_version INTEGER NOT NULL,
            number BIGINT NOT NULL,
            PRIMARY KEY (issuer_role, issuer_version))""",
        f"""CREATE TABLE moves (
            id {{ID}},
            resident_id BIGINT NOT NULL REFERENCES residents(id),
            card_serial TEXT,
            from_municipality TEXT NOT NULL,
            to_municipality TEXT NOT NULL,
            planned_date TEXT NOT NULL,
            reason TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ({", ".join(f"'{s}'" for s in MOVE_STATUSES)})),
            moved_in_date TEXT,
            new_address TEXT,
            notified_at TEXT,
            continued_use_deadline TEXT,
            continued_at TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL)""",
        """CREATE UNIQUE INDEX one_open_move_per_resident ON moves(resident_id)
            WHERE status IN ('planned', 'moved-in')""",
        f"""CREATE TABLE card_operations (
            id {{ID}},
            card_serial TEXT NOT NULL,
            kind TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ({", ".join(f"'{s}'" for s in OPERATION_STATUSES)})),
            payload TEXT NOT NULL,
            owner TEXT,
            failure TEXT,
            started_at TEXT NOT NULL,
            finished_at TEXT)""",
        """CREATE UNIQUE INDEX one_open_operation_per_card ON card_operations(card_serial)
            WHERE status IN ('pending', 'interrupted')""",
        "CREATE INDEX provision_log_kind ON provision_log(kind, idx)",
    ],
    [  # 7: the provision log at national scale (issue 14). Group-committed appends: one
       # token MAC per batch over the batch's Merkle subtree root (tools.audit.batches);
       # entries of a batch carry an empty per-entry MAC. A disclosure finds a resident's
       # entries by what the entries themselves say (an index on the entry text), so an
       # entry whose resident_id column was re-attributed is still found, without a scan.
        """CREATE TABLE log_batches (
            start_idx BIGINT PRIMARY KEY,
            end_idx BIGINT NOT NULL,
            mac {BLOB} NOT NULL,
            mac_version INTEGER NOT NULL,
            CHECK (end_idx > start_idx))""",
        {"sqlite": "CREATE INDEX provision_log_said_resident ON provision_log("
                   "json_extract(entry, '$.resident_id'))",
         "postgresql": "CREATE INDEX provision_log_said_resident ON provision_log("
                       "((entry::jsonb ->> 'resident_id')))"},
        # `provide batch` matches the 4 information by row values: found by birth date
        # and name, not by a scan of every resident per chunk
        "CREATE INDEX resident_identity_match ON resident_identity(birth_date, name)",
    ],
    [  # 8: the registry enforces its own rules (issue 14): which station id each station
       # role writes as; on PostgreSQL roles, grants, append-only triggers and the checked
       # status functions (tools.registry.pg_rules; SQLite keeps the rules in the code)
        """CREATE TABLE registry_stations (
            station_id TEXT PRIMARY KEY,
            role TEXT NOT NULL UNIQUE,
            status TEXT NOT NULL CHECK (status IN ('enrolled', 'revoked')),
            enrolled_at TEXT NOT NULL,
            revoked_at TEXT)""",
        *({"postgresql": sql} for sql in pg_rules.migration_statements()),
    ],
    [  # 9: the log's companions accept only what the log says (security review of issue
       # 14): one station could otherwise halt every station's appends with a bogus Merkle
       # node, batch row or an entry at index 2^63-1 (tools.registry.pg_log_rules)
        *({"postgresql": sql} for sql in pg_log_rules.migration_statements()),
    ],
    [  # 10: stations check each other's entries (issue 14): every append signed by its
       # station's log key (log_attestations), the keys certified by the station CA
       # (log_signers, tools.registry.log_signers); each station's checkpoints its own
       # (audit_checkpoints.signer: '' for the ones made before)
        """CREATE TABLE log_signers (
            station_id TEXT NOT NULL,
            key_id TEXT NOT NULL,
            certificate {BLOB} NOT NULL,
            PRIMARY KEY (station_id, key_id))""",
        """CREATE TABLE log_attestations (
            start_idx BIGINT PRIMARY KEY,
            end_idx BIGINT NOT NULL,
            station_id TEXT NOT NULL,
            key_id TEXT NOT NULL,
            signature {BLOB} NOT NULL,
            CHECK (start_idx >= 0 AND end_idx > start_idx))""",
        {"sqlite": """CREATE TABLE audit_checkpoints_v10 (
            size BIGINT NOT NULL,
            root BLOB NOT NULL,
            at TEXT NOT NULL,
            key_label TEXT NOT NULL,
            signature BLOB NOT NULL,
            signer TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (signer, size))"""},
        {"sqlite": "INSERT INTO audit_checkpoints_v10 (size, root, at, key_label, signature, "
                   "signer) SELECT size, root, at, key_label, signature, '' "
                   "FROM audit_checkpoints"},
        {"sqlite": "DROP TABLE audit_checkpoints"},
        {"sqlite": "ALTER TABLE audit_checkpoints_v10 RENAME TO audit_checkpoints"},
        *({"postgresql": sql} for sql in pg_attest_rules.migration_statements()),
    ],
]


TYPES = {
    "sqlite": {"ID": "INTEGER PRIMARY KEY", "BLOB": "BLOB"},
    "postgresql": {"ID": "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", "BLOB": "BYTEA"},
}


def statements_for(dialect: str, migration: int) -> list[str]:
    found = []
    for statement in MIGRATIONS[migration]:
        text = statement.get(dialect) if isinstance(statement, dict) else statement
        if text is not None:
            found.append(text.format(**TYPES[dialect]))
    return found
