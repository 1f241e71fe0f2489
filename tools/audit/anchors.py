"""Where the provision log's size and root are kept out of the database's reach.

- The **token head**: a private data object in the station's token, labelled
  ``juki/audit-log-head/<log name>``, whose value is the unsigned tlog-checkpoint body
  ``<origin>\\n<size>\\n<base64 root>\\n``; rewritten inside the write transaction of every
  append and every checkpoint.
- The **checkpoint file** ``<home>/audit/checkpoints``: every signed checkpoint note, each
  followed by a blank line, appended (O_APPEND, 0600) and never rewritten, for witnesses
  to cosign.

The log name is the first 8 bytes (hex) of SHA-256 of where the station opens the
registry (the resolved SQLite path, or the PostgreSQL URL without user, password and
ssl* parameters: which database, not who connects), so nothing in the database can
choose which head is its own.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from hsm.data_objects import read_data, write_data
from hsm.token import Hsm

from ..registry.backend import Backend
from .note import SignedNote, parse_notes

HEAD_LABEL_PREFIX = "juki/audit-log-head/"
ORIGIN_PREFIX = "juki/provision-log/"
CHECKPOINTS_FILE = Path("audit") / "checkpoints"


def _connection_parameter(name: str) -> bool:
    """Says who connects and how (user, password, TLS files and modes), not which
    database: left out of the log's name, so a station keeps its log when it moves to a
    TLS connection as its own role (issue 14)."""
    return name in ("user", "password") or name.startswith("ssl")


def _where(location: str) -> str:
    if location.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(location)
        host = parts.hostname or ""
        netloc = host + (f":{parts.port}" if parts.port else "")
        query = "&".join(item for item in parts.query.split("&")
                         if not _connection_parameter(unquote(item.partition("=")[0])))
        return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    return str(Path(location).resolve())


def log_name(db: Backend) -> str:
    return hashlib.sha256(_where(db.location).encode("utf-8")).hexdigest()[:16]


def origin(db: Backend) -> str:
    """The log's C2SP origin line (and the checkpoint key's name)."""
    return ORIGIN_PREFIX + log_name(db)


def checkpoints_path(home_root: Path) -> Path:
    return home_root / CHECKPOINTS_FILE


@dataclass(frozen=True)
class Head:
    size: int
    root: bytes


def _parse_head(value: bytes, wanted_origin: str) -> Head | None:
    lines = value.decode("utf-8", "replace").split("\n")
    if len(lines) != 4 or lines[0] != wanted_origin or not lines[1].isdigit():
        return None
    return Head(int(lines[1]), base64.b64decode(lines[2]))


def read_head(hsm: Hsm, db: Backend) -> Head | None:
    """The token's head of this log (the largest, if a killed write left two)."""
    name = origin(db)
    heads = [h for v in read_data(hsm, HEAD_LABEL_PREFIX + log_name(db))
             if (h := _parse_head(v, name)) is not None]
    return max(heads, key=lambda h: h.size, default=None)


def write_head(hsm: Hsm, db: Backend, size: int, root: bytes) -> None:
    """Record (size, root) in the token; call inside the write transaction."""
    value = f"{origin(db)}\n{size}\n{base64.b64encode(root).decode()}\n".encode()
    write_data(hsm, HEAD_LABEL_PREFIX + log_name(db), value)


def append_note(path: Path, note: SignedNote) -> None:
    """Append one signed note (and the blank line that ends it) to the checkpoint file."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (note.serialise() + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def read_notes(path: Path) -> list[SignedNote]:
    """Every note of the checkpoint file (none if it does not exist); ValueError if the
    file is not a sequence of signed notes."""
    if not path.exists():
        return []
    return parse_notes(path.read_text(encoding="utf-8"))
