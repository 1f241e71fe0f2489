"""Care of SoftHSM's file store, which any station on SoftHSM needs.

SoftHSM's file store rewrites a token's ``token.object`` in place on every login (it
stores the PIN-failure flags there); a process killed during that write leaves the
file empty and the token unreadable. Its content never changes otherwise in our use
(label and PIN blobs), so a copy taken at initialisation restores it.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

TOKEN_FILE = "token.object"
BACKUP_SUFFIX = ".juki-backup"


def backup_token_files(tokens_dir: Path) -> None:
    """Keep a copy of every token's ``token.object`` (taken when it is whole)."""
    for token in tokens_dir.iterdir():
        current = token / TOKEN_FILE
        backup = token / (TOKEN_FILE + BACKUP_SUFFIX)
        if current.is_file() and current.stat().st_size > 0 and not backup.exists():
            shutil.copy2(current, backup)


def repair_token_files(tokens_dir: Path) -> list[str]:
    """Restore any ``token.object`` a killed process left empty; returns their tokens."""
    repaired = []
    for token in sorted(tokens_dir.iterdir()) if tokens_dir.is_dir() else []:
        current = token / TOKEN_FILE
        backup = token / (TOKEN_FILE + BACKUP_SUFFIX)
        if current.is_file() and current.stat().st_size == 0 and backup.is_file():
            tmp = token / (TOKEN_FILE + ".juki-restore")
            shutil.copy2(backup, tmp)
            os.replace(tmp, current)
            log.warning("SoftHSM token %s: empty %s restored from its copy", token.name, TOKEN_FILE)
            repaired.append(token.name)
    return repaired
