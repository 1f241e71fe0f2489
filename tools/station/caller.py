"""Who a command is running for, and how it reaches that person's terminal and files.

A command run by the station service works on the service's station but for a client
process: the caller (uid from ``SO_PEERCRED``, never from the client's word) decides
whose operator session applies; the client's terminal answers PIN prompts and supplies
stdin; the client reads and writes the files named on its command line, with its own
permissions (the service never opens a client's path itself). Run locally, the caller
is this process and the terminal is this process's own.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TextIO


@dataclass(frozen=True)
class Caller:
    """The process a command runs for."""

    uid: int
    pid: int
    via_service: bool

    @property
    def label(self) -> str:
        return f"uid {self.uid}" + (" via the station service" if self.via_service else "")


@dataclass(frozen=True)
class ClientFile:
    data: bytes
    mode: int  # st_mode as the client saw it (a PIN file must not be group/other readable)


class Terminal(Protocol):
    """The caller's side: prompts, stdin and files (see the module docstring)."""

    def stdin_is_tty(self) -> bool: ...

    def stdin(self) -> TextIO: ...

    def ask_secret(self, label: str, confirm: bool) -> str: ...

    def read_file(self, path: Path) -> ClientFile: ...

    def write_file(self, path: Path, data: bytes) -> None: ...

    def make_dir(self, path: Path, private: bool = False) -> None:
        """``private``: a new directory, mode 0700; an existing one is an error."""
        ...


@dataclass(frozen=True)
class ServicePolicy:
    """What root decided for the station service when it started it (its unit file):
    ``allows_open`` keeps the station open even once it has an operator-admin."""

    allows_open: bool = False


LOCAL_CALLER = Caller(uid=os.getuid(), pid=os.getpid(), via_service=False)
CURRENT_CALLER: ContextVar[Caller] = ContextVar("juki_caller", default=LOCAL_CALLER)
CURRENT_TERMINAL: ContextVar[Terminal | None] = ContextVar("juki_terminal", default=None)
DEFAULT_POLICY = ServicePolicy()  # frozen, so one shared default is safe
CURRENT_POLICY: ContextVar[ServicePolicy] = ContextVar("juki_policy", default=DEFAULT_POLICY)


def caller() -> Caller:
    return CURRENT_CALLER.get()
