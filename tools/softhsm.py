"""SoftHSM housekeeping for the test rig.

``softhsm2-util --init-token`` takes the PINs either as arguments (visible in
/proc/*/cmdline to every local user) or at its own hidden terminal prompt. We give it
a pseudo-terminal and answer the prompts, so the PINs never appear in any argv.

SoftHSM's file store rewrites a token's ``token.object`` in place on every login (it
stores the PIN-failure flags there); a process killed during that write leaves the
file empty and the token unreadable. Its content never changes otherwise in our use
(label and PIN blobs), so a copy taken at initialisation restores it.
"""

from __future__ import annotations

import logging
import os
import pty
import select
import shutil
import time
from pathlib import Path

from .errors import RigError

log = logging.getLogger(__name__)

PROMPT_TIMEOUT_S = 20.0
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


def init_token(conf: Path, label: str, so_pin: str, user_pin: str) -> None:
    """Initialise the first free slot of the SoftHSM at ``conf`` as token ``label``."""
    env = dict(os.environ, SOFTHSM2_CONF=str(conf))
    pid, fd = pty.fork()
    if pid == 0:  # child: the tool, with the pseudo-terminal as its terminal
        try:
            os.execvpe("softhsm2-util", ["softhsm2-util", "--init-token", "--free", "--label", label],
                       env)
        finally:
            os._exit(127)
    transcript = bytearray()
    pending = b""
    deadline = time.monotonic() + PROMPT_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 1024)
            except OSError:  # the tool exited and closed the terminal
                break
            if not chunk:
                break
            transcript += chunk
            pending += chunk
            if pending.rstrip().endswith(b":"):
                prompt = pending.decode(errors="replace")
                pending = b""
                if "SO PIN" in prompt:
                    os.write(fd, so_pin.encode() + b"\n")
                elif "user PIN" in prompt:
                    os.write(fd, user_pin.encode() + b"\n")
    finally:
        os.close(fd)
        _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        shown = transcript.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise RigError(f"softhsm2-util --init-token failed: {shown[0]}")
