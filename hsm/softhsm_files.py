"""Care of SoftHSM's file store, which any station on SoftHSM needs.

SoftHSM's file store rewrites a token's ``token.object`` in place on every login (it
stores the PIN-failure flags there); a process killed during that write leaves the
file empty and the token unreadable. ``token.object`` also holds the PIN blobs, so a
copy is only good while no PIN changed since it was taken:

- the copy is refreshed from every whole ``token.object`` each time the station opens
  its token (before it logs in), so a PIN change is in the copy before the next login
  could damage the file;
- a restored copy is then proven by logging in with the station's PIN; a copy that
  does not accept it predates a PIN change and is taken back out again (the file is
  left empty, the error names it): the repair never brings an old PIN back.
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

TOKEN_FILE = "token.object"
LOCK_FILE = "token.lock"  # SoftHSM's own lock of token.object
BACKUP_SUFFIX = ".juki-backup"


def _token_dirs(tokens_dir: Path) -> list[Path]:
    return sorted(p for p in tokens_dir.iterdir() if p.is_dir()) if tokens_dir.is_dir() else []


def _read_whole(token: Path) -> bytes | None:
    """``token.object`` read under SoftHSM's lock, or None when it is empty/absent."""
    current = token / TOKEN_FILE
    if not current.is_file():
        return None
    lock = token / LOCK_FILE
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600) if lock.parent.is_dir() else None
    try:
        if fd is not None:
            fcntl.lockf(fd, fcntl.LOCK_SH)
        data = current.read_bytes()
    finally:
        if fd is not None:
            os.close(fd)
    return data or None


def _write_atomically(path: Path, data: bytes) -> None:
    """Each writer its own temporary file (two stations opening the token at once each
    refresh the copy), renamed over ``path`` whole."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".juki-tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def backup_token_files(tokens_dir: Path) -> None:
    """Keep every token's copy of ``token.object`` equal to the file as it is now (when
    it is whole): after a PIN change the copy holds the new PIN."""
    for token in _token_dirs(tokens_dir):
        data = _read_whole(token)
        backup = token / (TOKEN_FILE + BACKUP_SUFFIX)
        if data is not None and (not backup.is_file() or backup.read_bytes() != data):
            _write_atomically(backup, data)


def repair_token_files(tokens_dir: Path) -> list[str]:
    """Restore any ``token.object`` a killed process left empty; returns their tokens
    (the caller proves each with the station PIN: ``undo_repair`` if it fails)."""
    repaired = []
    for token in _token_dirs(tokens_dir):
        current = token / TOKEN_FILE
        backup = token / (TOKEN_FILE + BACKUP_SUFFIX)
        if current.is_file() and current.stat().st_size == 0 and backup.is_file():
            _write_atomically(current, backup.read_bytes())
            log.warning("SoftHSM token %s: empty %s restored from its copy", token.name, TOKEN_FILE)
            repaired.append(token.name)
    return repaired


def undo_repair(tokens_dir: Path, tokens: list[str]) -> None:
    """Take restored copies out again (the station PIN does not open them: they predate
    a PIN change); the copy is kept aside as ``token.object.juki-stale``."""
    for name in tokens:
        token = tokens_dir / name
        backup = token / (TOKEN_FILE + BACKUP_SUFFIX)
        if backup.is_file():
            os.replace(backup, token / (TOKEN_FILE + ".juki-stale"))
        _write_atomically(token / TOKEN_FILE, b"")
