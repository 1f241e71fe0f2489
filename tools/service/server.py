"""The station service: ``juki station serve``.

One long-running process, as the station's own system user, holding the station home
(token PIN, registry, readers). Clients connect to a Unix stream socket (mode 0660, group
of the operators; no TCP). Each connection is served in a forked child: the caller is
read from the kernel (``SO_PEERCRED``), the request runs the same command code as a
local ``juki`` (``remote.serve_request``), and the child exits. A crash in one request
takes nothing else down, and no request sees another's state. The parent never opens
the token itself, so every child initialises PKCS#11 afresh after the fork.
"""

from __future__ import annotations

import contextlib
import grp
import logging
import os
import signal
import socket
import stat
import struct
import sys
from collections.abc import Callable
from pathlib import Path

from ..errors import StationConfigError
from ..station.caller import Caller
from ..station.home import StationHome
from .home_check import home_problems
from .protocol import Channel
from .remote import serve_request

log = logging.getLogger("juki.service")

MAX_CHILDREN = 32  # requests served at once; more wait in the listen queue
PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


class _Stop(Exception):
    """SIGTERM or SIGINT: stop accepting, let the requests under way finish."""


def peer_of(conn: socket.socket) -> Caller:
    """The connecting process, as the kernel reports it (never as the client says)."""
    pid, uid, _gid = PEERCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                     PEERCRED.size))
    return Caller(uid=uid, pid=pid, via_service=True)


def _listen(path: Path, group: str | None) -> socket.socket:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise StationConfigError(f"{path} exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()  # a stale socket of a service that is gone
        else:
            raise StationConfigError(f"a station service already listens on {path}")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        sock.bind(str(path))
    finally:
        os.umask(old_umask)
    if group is not None:
        _give_to_group(path, group)
    sock.listen(64)
    return sock


def _give_to_group(path: Path, group: str) -> None:
    """Socket mode 0660, group ``group``: inherited from a setgid run directory (as
    systemd's RuntimeDirectory or the installer makes it), else set here, which needs
    the service user to be in that group."""
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        raise StationConfigError(f"no group {group}: create it (see docs/security.md)") from None
    if path.stat().st_gid != gid:
        try:
            os.chown(path, -1, gid)
        except PermissionError:
            path.unlink()
            raise StationConfigError(
                f"cannot give {path} to group {group}: make {path.parent} setgid {group} "
                "(mode 2750) or add the service user to that group") from None
    os.chmod(path, 0o660)


def _reap(children: set[int], block: bool = False) -> None:
    while children:
        try:
            pid, _ = os.waitpid(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            children.clear()
            return
        if pid == 0:
            return
        children.discard(pid)


def _serve_child(conn: socket.socket, home: Path, run: Callable[[list[str]], int]) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        serve_request(Channel(conn), peer_of(conn), home, run)
    except OSError as exc:  # the client went away
        log.info("client connection lost: %s", exc)
    finally:
        with contextlib.suppress(OSError):
            sys.stdout.flush()
        conn.close()


def serve(home: StationHome, socket_path: Path, group: str | None,
          run: Callable[[list[str]], int], ready: Callable[[str], None]) -> None:
    """Serve until SIGTERM or SIGINT; refuses to start on an unsafe home."""
    problems = home_problems(home, os.getuid())
    if problems:
        raise StationConfigError("the station service will not run on this home:\n  "
                                 + "\n  ".join(problems))
    sock = _listen(socket_path, group)

    def stop(_signum: int, _frame: object) -> None:
        raise _Stop

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    children: set[int] = set()
    ready(f"station service for {home.root} listening on {socket_path}")
    try:
        while True:
            _reap(children)
            while len(children) >= MAX_CHILDREN:
                _reap(children, block=True)
            conn, _ = sock.accept()
            pid = os.fork()
            if pid == 0:
                sock.close()
                _serve_child(conn, home.root, run)
                os._exit(0)
            children.add(pid)
            conn.close()
    except _Stop:
        log.info("station service stopping")
    finally:
        sock.close()
        with contextlib.suppress(FileNotFoundError):
            socket_path.unlink()
        _reap(children, block=True)
