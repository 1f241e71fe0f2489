"""Versioned migrations of the registry schema. A migration is a list of statements,
applied in one transaction with the version bump; never edit a released one."""

from __future__ import annotations

CARD_STATUSES = ("issuing", "active", "suspended", "revoked", "expired", "failed")
REVOKE_REASONS = ("lost", "stolen", "returned", "damaged", "superseded", "deceased", "moved-out")

MIGRATIONS: list[list[str]] = [
    [  # 1: the walking skeleton
        """CREATE TABLE cards (
            serial TEXT PRIMARY KEY,
            profile TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('issuing', 'active', 'failed')),
            resident_code TEXT,
            municipality_code TEXT,
            expiry TEXT,
            certificate BLOB,
            failure TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL)""",
        "CREATE INDEX cards_resident_code ON cards(resident_code)",
    ],
    [  # 2: card life cycle, residents and their record codes, an event log
        """CREATE TABLE residents (
            id INTEGER PRIMARY KEY,
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
            id INTEGER PRIMARY KEY,
            serial TEXT NOT NULL,
            profile TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ({", ".join(f"'{s}'" for s in CARD_STATUSES)})),
            status_reason TEXT,
            resident_id INTEGER REFERENCES residents(id),
            resident_code TEXT,
            municipality_code TEXT,
            expiry TEXT,
            certificate BLOB,
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
            id INTEGER PRIMARY KEY,
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
]
