"""The station service: ``juki station serve``.

One long-running process, as the station's own system user, holding the station home
(token PIN, registry, readers). Clients connect to a Unix stream socket (mode 0660, group
of the operators; no TCP). A fixed pool of worker processes, forked at start, accept the
connections: each serves one request at a time, with the caller read from the kernel
(``SO_PEERCRED``) and the same command code as a local ``juki`` (``remote.serve_request``).
A worker keeps its token session between requests (logging in once, not per request),
but nothing of a request's own: caller, terminal, output, environment and the station
context are made anew for each. A worker that dies is replaced; a worker retires after
``MAX_REQUESTS`` so that nothing accumulates. The parent never opens the token, so each
worker initialises PKCS#11 afresh after the fork.
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
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import StationConfigError
from ..station.caller import CURRENT_POLICY, DEFAULT_POLICY, Caller, ServicePolicy
from ..station.home import StationHome
from .home_check import home_problems
from .protocol import Channel
from .remote import serve_request

log = logging.getLogger("juki.service")

DEFAULT_WORKERS = 4  # requests served at once; more wait in the listen queue
MAX_REQUESTS = 1000  # then a worker retires and a fresh one takes its place
STOP_GRACE_S = 60.0  # for requests under way when the service is stopped
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


def _serve_connection(conn: socket.socket, home: Path, run: Callable[[list[str]], int]) -> None:
    os.environ.pop("PAM_USER", None)  # set again only for a root caller's own request
    streams = sys.stdout, sys.stderr
    try:
        serve_request(Channel(conn), peer_of(conn), home, run)
    except OSError as exc:  # the client went away
        log.info("client connection lost: %s", exc)
    finally:
        sys.stdout, sys.stderr = streams
        conn.close()


def _worker(sock: socket.socket, home: Path, run: Callable[[list[str]], int]) -> None:
    """Serve requests one at a time. SIGTERM while idle ends the worker at once; during a
    request it ends it after the request, so that a card session in progress still ends
    with the card powered off and the PIV PIN forgotten."""
    state = {"busy": False, "stopping": False}

    def stop(_signum: int, _frame: object) -> None:
        state["stopping"] = True
        if not state["busy"]:
            raise _Stop

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the pool
    try:
        for _ in range(MAX_REQUESTS):
            conn, _ = sock.accept()
            state["busy"] = True
            _serve_connection(conn, home, run)
            state["busy"] = False
            if state["stopping"]:
                return
    except _Stop:
        return


def _spawn(sock: socket.socket, home: Path, run: Callable[[list[str]], int]) -> int:
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            _worker(sock, home, run)
        except BaseException:
            log.exception("worker failed")
            code = 1
        finally:
            os._exit(code)
    return pid


def _stop_workers(workers: set[int]) -> None:
    """SIGTERM to every worker; those serving a request finish it (up to
    ``STOP_GRACE_S``), then anything left is killed."""
    for pid in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    while workers and time.monotonic() < deadline:
        for pid in list(workers):
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == 0:
                    continue
            workers.discard(pid)
        time.sleep(0.05)
    for pid in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def _log_to_service_stderr() -> None:
    """The service's own log goes to its stderr (the journal under systemd), never to a
    client's stream (workers redirect sys.stderr per request)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def serve(home: StationHome, socket_path: Path, group: str | None,
          run: Callable[[list[str]], int], ready: Callable[[str], None],
          pool: int = DEFAULT_WORKERS, policy: ServicePolicy = DEFAULT_POLICY) -> None:
    """Serve until SIGTERM or SIGINT; refuses to start on an unsafe home."""
    problems = home_problems(home, os.getuid())
    if problems:
        raise StationConfigError("the station service will not run on this home:\n  "
                                 + "\n  ".join(problems))
    _log_to_service_stderr()
    sock = _listen(socket_path, group)
    CURRENT_POLICY.set(policy)  # inherited by every worker

    def stop(_signum: int, _frame: object) -> None:
        raise _Stop

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    workers = {_spawn(sock, home.root, run) for _ in range(pool)}
    ready(f"station service for {home.root} listening on {socket_path} ({pool} workers)")
    try:
        while True:
            pid, status = os.wait()
            workers.discard(pid)
            if os.waitstatus_to_exitcode(status) != 0:
                log.warning("worker %d ended with status %d; replaced", pid,
                            os.waitstatus_to_exitcode(status))
            workers.add(_spawn(sock, home.root, run))
    except _Stop:
        log.info("station service stopping")
    finally:
        sock.close()
        with contextlib.suppress(FileNotFoundError):
            socket_path.unlink()
        _stop_workers(workers)
