"""The log split into tasks that two worker processes check at once (`verify_scan`).

Workers are fresh interpreters (``python -m tools.audit.verify_scan``, the equivalent of
multiprocessing's 'spawn' without re-importing the CLI as ``__main__``): nothing of the
parent is inherited (no PKCS#11 session, no open file: ``close_fds``), they never open
the token and read the database themselves, by index range, with the location they get
on stdin. Results come back in task order, so the parent combines subtrees and checks
roots left to right while the workers go on. A worker that cannot start or dies leaves
its tasks to this process: slower, never a different verdict.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from . import merkle
from .verify_scan import CHUNK, ChunkResult, Task, scan

WORKERS = 2  # the VM's cores; the parent's own work (the token, combining) is small
PARALLEL_FROM = 2 * CHUNK  # below this, starting processes costs more than it saves
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def plan(size: int, cuts: list[int], tail: int, leaves_from: int,
         chunk: int = CHUNK) -> list[Task]:
    """Tasks of ``chunk`` entries (a power of two; the last task shorter) covering
    ``[0, size)``."""
    if chunk < 1 or chunk & (chunk - 1):
        raise ValueError(f"a task size must be a power of two (got {chunk})")
    tasks = []
    for start in range(0, size, chunk):
        end = min(start + chunk, size)
        tasks.append(Task(start, end, tuple(c for c in cuts if start < c <= end), tail,
                          leaves_from))
    return tasks


def push_subtree(stack: list[tuple[int, bytes]], height: int, value: bytes) -> None:
    """Append a perfect subtree that starts where ``stack`` ends (it is aligned to its
    size: tasks start at multiples of ``CHUNK``), merging equal heights."""
    while stack and stack[-1][0] == height:
        value = merkle.node_hash(stack.pop()[1], value)
        height += 1
    stack.append((height, value))


def _location(db: Any) -> tuple[str, Any]:
    """Where workers connect, and as whom: a TLS-enrolled station's identity (its role,
    certificate and TLS-token key) if this process connected with one."""
    location = str(db.location)
    if location.startswith(("postgresql://", "postgres://")):
        from ..registry.tls import known_identity

        return location, known_identity(location)
    return str(Path(location).resolve()), None


def _start(location: tuple[str, Any], tasks: list[Task]) -> subprocess.Popen[bytes]:
    path = os.environ.get("PYTHONPATH")
    env = os.environ | {"PYTHONPATH": str(_PACKAGE_ROOT) + (os.pathsep + path if path else "")}
    worker = subprocess.Popen([sys.executable, "-m", "tools.audit.verify_scan"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, env=env, close_fds=True)
    assert worker.stdin is not None
    try:
        worker.stdin.write(pickle.dumps((*location, tasks)))
        worker.stdin.close()
    except OSError:
        pass  # it died at once: its results will be missing and done here
    return worker


def _receive(stream: IO[bytes] | None) -> ChunkResult | None:
    try:
        found = pickle.load(stream) if stream is not None else None
    except (EOFError, OSError, pickle.UnpicklingError):
        return None
    return found if isinstance(found, ChunkResult) else None


def results(db: Any, tasks: list[Task], workers: int = WORKERS,
            parallel_from: int = PARALLEL_FROM) -> Iterator[ChunkResult]:
    """Each task's result, in order: in this process for a log under ``parallel_from``
    entries (or ``workers`` < 2), else from ``workers`` processes, task ``i`` on worker
    ``i % workers``."""
    if workers < 2 or len(tasks) < 2 or tasks[-1].end < parallel_from:
        for task in tasks:
            yield scan(db, task)
        return
    count = workers
    location = _location(db)
    procs = [_start(location, tasks[k::count]) for k in range(count)]
    try:
        healthy = True
        for number, task in enumerate(tasks):
            found = _receive(procs[number % count].stdout) if healthy else None
            if found is None or found.start != task.start:
                healthy = False
                found = scan(db, task)
            yield found
    finally:
        for proc in procs:
            with contextlib.suppress(OSError):
                if proc.stdout is not None:
                    proc.stdout.close()
            if proc.poll() is None:
                proc.kill()  # our own child, by its handle
            proc.wait()
