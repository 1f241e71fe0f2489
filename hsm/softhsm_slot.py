"""A further SoftHSM token in a station's SoftHSM store, made without any PIN on argv.

Why a station needs one: its registry TLS key is used by libpq through the OpenSSL
pkcs11 engine (libp11), and libp11 0.4.12 (Debian 12) cannot enumerate the private keys
of a token that holds an Ed25519 key (the checkpoint note signer): "Unable to enumerate
private keys", then a crash. So the TLS key lives in a token of its own beside the
station's (``tools.registry.tls``).

``softhsm2-util --init-token`` takes the PINs as arguments (visible in /proc/*/cmdline)
or at its own terminal prompt: it is given a pseudo-terminal and the prompts are answered
(as the test rig does for the station token). SoftHSM reads its token list once, at
C_Initialize: a token made after this process loaded the library is not seen by it, so
callers make it before the first PKCS#11 call (``token_labels`` asks a subprocess).
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from pathlib import Path

from .errors import HsmConfigError

PROMPT_TIMEOUT_S = 20.0


def token_labels(conf: Path) -> set[str]:
    """The labels of the initialised tokens of the SoftHSM store at ``conf``."""
    result = subprocess.run(["softhsm2-util", "--show-slots"], capture_output=True, text=True,
                            env=dict(os.environ, SOFTHSM2_CONF=str(conf)), timeout=30,
                            check=False)
    if result.returncode != 0:
        raise HsmConfigError(f"softhsm2-util --show-slots failed: {result.stderr.strip()}")
    labels = set()
    for line in result.stdout.splitlines():
        key, _, value = line.strip().partition(":")
        if key == "Label" and value.strip():
            labels.add(value.strip())
    return labels


def _answer_prompts(fd: int, so_pin: str, user_pin: str) -> bytes:
    transcript, pending = bytearray(), b""
    deadline = time.monotonic() + PROMPT_TIMEOUT_S
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
            prompt, pending = pending.decode(errors="replace"), b""
            if "SO PIN" in prompt:
                os.write(fd, so_pin.encode() + b"\n")
            elif "user PIN" in prompt:
                os.write(fd, user_pin.encode() + b"\n")
    return bytes(transcript)


def init_token(conf: Path, label: str, so_pin: str, user_pin: str) -> None:
    """Initialise the first free slot of the SoftHSM store at ``conf`` as ``label``."""
    env = dict(os.environ, SOFTHSM2_CONF=str(conf))
    pid, fd = pty.fork()
    if pid == 0:  # child: the tool, with the pseudo-terminal as its terminal
        try:
            os.execvpe("softhsm2-util",
                       ["softhsm2-util", "--init-token", "--free", "--label", label], env)
        finally:
            os._exit(127)
    try:
        transcript = _answer_prompts(fd, so_pin, user_pin)
    finally:
        os.close(fd)
        _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        shown = transcript.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise HsmConfigError(f"softhsm2-util --init-token failed: {shown[0]}")
