"""The ``juki`` command: a client of the station service when one serves this machine,
else the command code run in this process (a station of one's own: the embedded
defaults, the test rig, development).

The service is found at ``$JUKI_SOCKET``, else at the default socket if it exists;
``JUKI_SOCKET=none`` runs locally. The rig, the emulator, the demo and the service
itself always run locally: they stand for the physical world or are the service.
"""

from __future__ import annotations

import os
import sys

from .errors import ExitCode
from .service.protocol import DEFAULT_SOCKET, is_local_command


def service_socket(argv: list[str]) -> str | None:
    """The socket to send this command to, or None to run it here."""
    configured = os.environ.get("JUKI_SOCKET")
    if configured == "none":
        return None
    if is_local_command(argv):
        return None
    if configured:
        return configured
    return DEFAULT_SOCKET if os.path.exists(DEFAULT_SOCKET) else None


def main() -> None:
    argv = sys.argv[1:]
    socket_path = service_socket(argv)
    if socket_path is None:
        from .cli.main import main as run_here

        run_here(argv)
        return
    from .service.client import run

    try:
        sys.exit(run(socket_path, argv))
    except KeyboardInterrupt:
        sys.exit(ExitCode.INTERRUPTED)
