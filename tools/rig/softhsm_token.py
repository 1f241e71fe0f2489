"""The rig's test token: a SoftHSM token initialised for the rig's station home.

``softhsm2-util --init-token`` takes the PINs either as arguments (visible in
/proc/*/cmdline to every local user) or at its own hidden terminal prompt. We give it
a pseudo-terminal and answer the prompts, so the PINs never appear in any argv.
"""

from __future__ import annotations

import logging
import os
import pty
import select
import time
from pathlib import Path

from ..errors import RigError

log = logging.getLogger(__name__)

PROMPT_TIMEOUT_S = 20.0


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
