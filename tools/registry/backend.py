"""The two databases the registry runs on, behind one small interface.

SQLite (a file in the station home, WAL) for a single station; PostgreSQL (psycopg 3,
by ``postgresql://`` URL) for several stations sharing one registry. The SQL is
written once with ``?`` parameters; the PostgreSQL side turns them into ``%s``. Write
transactions are serialised: ``BEGIN IMMEDIATE`` on SQLite, a transaction-scoped
advisory lock on PostgreSQL, so two stations never hand out the same code or serial.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from ..errors import StationConfigError

if TYPE_CHECKING:
    from .tls import ClientIdentity

WRITE_LOCK_KEY = 7_386_001  # pg_advisory_xact_lock key of the registry


class Backend(Protocol):
    dialect: str
    location: str

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any: ...
    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None: ...
    def begin_write(self) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def version(self) -> int: ...
    def set_version(self, version: int) -> None: ...
    def close(self) -> None: ...


class SqliteBackend:
    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        self.location = str(path)
        with contextlib.suppress(FileExistsError):  # created private: identity data lives
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # here
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30,
                                   check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # every commit fsynced: "recorded before released" must survive a power cut (in WAL
        # mode NORMAL may lose the last commits; FULL is only this build's default)
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self._db.executemany(sql, rows)

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        return self._db.execute(sql, params)

    def begin_write(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self._db.execute("COMMIT")

    def rollback(self) -> None:
        self._db.execute("ROLLBACK")

    def version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def set_version(self, version: int) -> None:
        self._db.execute(f"PRAGMA user_version = {int(version)}")

    def close(self) -> None:
        self._db.close()


class PostgresBackend:
    dialect = "postgresql"

    def __init__(self, url: str, client: ClientIdentity | None = None) -> None:
        """``client``: the station's TLS identity (``tls``): its role, certificate and
        token key are added to ``url``; without one, the identity this process's station
        already connected to ``url`` with, if any. ``location`` stays ``url`` (the log is
        the database, whoever connects)."""
        from .tls import known_identity, remember, system_psycopg

        self.location = url
        conninfo = url
        client = client or known_identity(url)
        if client is not None:
            system_psycopg()
            remember(url, client)
            conninfo = client.conninfo(url)
            client.prepare()
        import psycopg  # optional dependency: the `postgres` extra

        try:
            with _token_lock(client):
                self._db = psycopg.connect(conninfo, autocommit=True)
        except psycopg.OperationalError as exc:  # the server's words; no conninfo in them
            raise StationConfigError(f"the registry at {_redacted(url)} did not admit this "
                                     f"station: {str(exc).strip()}") from None
        # a station role may not CREATE (even IF NOT EXISTS checks the privilege first)
        if self._db.execute("SELECT to_regclass('schema_version')").fetchone()[0] is None:
            self._db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        if self._db.execute("SELECT count(*) FROM schema_version").fetchone()[0] == 0:
            self._db.execute("INSERT INTO schema_version VALUES (0)")

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self._db.execute(sql.replace("?", "%s"), params)  # type: ignore[arg-type]

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        with self._db.cursor() as cursor:
            cursor.executemany(sql.replace("?", "%s"), rows)  # type: ignore[arg-type]

    def begin_write(self) -> None:
        self._db.execute("BEGIN")
        self._db.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK_KEY,))

    def commit(self) -> None:
        self._db.execute("COMMIT")

    def rollback(self) -> None:
        self._db.execute("ROLLBACK")

    def version(self) -> int:
        return int(self._db.execute("SELECT version FROM schema_version").fetchone()[0])

    def set_version(self, version: int) -> None:
        self._db.execute("UPDATE schema_version SET version = %s", (int(version),))

    def close(self) -> None:
        self._db.close()


def _token_lock(client: ClientIdentity | None) -> contextlib.AbstractContextManager[object]:
    """The handshake signs in the token through libp11, outside python-pkcs11: SoftHSM has
    no locking of its own (``hsm.token``), so no other thread may be in it meanwhile."""
    if client is None:
        return contextlib.nullcontext()
    from hsm.token import PKCS11_LOCK

    return PKCS11_LOCK


def _redacted(url: str) -> str:
    """``url`` without a password (in the user part or as ``password=`` / ``sslpassword=``
    in the query), for messages."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", ":***@")
    query = "&".join(f"{key}=***" if key.lower() in ("password", "sslpassword") else pair
                     for pair in parts.query.split("&") if pair
                     for key in (pair.partition("=")[0],))
    shown = url.replace(parts.netloc, netloc, 1) if netloc != parts.netloc else url
    return shown.replace("?" + parts.query, "?" + query, 1)  # (not urlunsplit: it drops
    # the // of an empty host)


def open_backend(target: Path | str, client: ClientIdentity | None = None) -> Backend:
    """``client`` (a station's TLS identity) applies to PostgreSQL only."""
    text = str(target)
    if text.startswith(("postgresql://", "postgres://")):
        return PostgresBackend(text, client)
    return SqliteBackend(Path(target))
