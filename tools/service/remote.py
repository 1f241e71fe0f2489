"""One request, served in a child process of the station service.

The child runs the same command code as a local ``juki``, with its output, prompts,
stdin and file access carried over the connection to the client (``RemoteTerminal``)
and the caller taken from the kernel. The command line may not choose the station:
``--home`` and ``--db`` are the service's, and are refused from a client.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from ..errors import ExitCode
from ..station.caller import CURRENT_CALLER, CURRENT_TERMINAL, Caller, ClientFile
from .protocol import (
    ANSWER,
    PROTOCOL_VERSION,
    Channel,
    ProtocolError,
    is_local_command,
    parameters_of,
)

log = logging.getLogger("juki.service")  # the service's own log, never the client's

CLIENT_FORBIDDEN_OPTIONS = ("--home", "--db")
PASSED_ENVIRONMENT = ("PAM_USER",)  # read from the client only when the caller is root
MAX_STDIN = 1024 * 1024
CALL_TIMEOUT_S = 10.0  # for the call itself, once connected
ANSWER_TIMEOUT_S = 300.0  # a person typing a PIN at the client's prompt
MAX_CLIENT_VERBOSITY = 2  # -vvv (the APDU trace) would show card data before it is recorded


class RemoteStream(io.TextIOBase):
    """``sys.stdout``/``sys.stderr`` of the child: every write is a reply."""

    def __init__(self, channel: Channel, name: str) -> None:
        self._channel, self._name = channel, name

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def write(self, text: str) -> int:
        if not isinstance(text, str):  # click probes text streams with a bytes write
            raise TypeError("a text stream takes str")
        if text:
            self._channel.reply({self._name: text})
        return len(text)


class RemoteTerminal:
    """The client's terminal and files, reached by asking the client."""

    def __init__(self, channel: Channel, stdin_is_tty: bool) -> None:
        self._channel = channel
        self._tty = stdin_is_tty
        self._stdin: TextIO | None = None

    def _ask(self, question: dict[str, Any]) -> dict[str, Any]:
        self._channel.reply({"ask": question})
        answer = parameters_of(self._channel.receive(ANSWER_TIMEOUT_S), ANSWER)
        if "error" in answer:
            raise OSError(str(answer["error"]))
        return answer

    def stdin_is_tty(self) -> bool:
        return self._tty

    def stdin(self) -> TextIO:
        """The client's stdin, fetched once, when a command first needs it."""
        if self._stdin is None:
            try:
                data = base64.b64decode(self._ask({"kind": "stdin"}).get("data", ""),
                                        validate=True)[:MAX_STDIN]
            except (TypeError, ValueError):
                raise ProtocolError("the client's stdin answer is malformed") from None
            self._stdin = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="replace")
        return self._stdin

    def ask_secret(self, label: str, confirm: bool) -> str:
        value = self._ask({"kind": "secret", "label": label, "confirm": confirm}).get("value")
        if not isinstance(value, str):
            raise ProtocolError("the client's answer to a prompt is malformed")
        return value

    def read_file(self, path: Path) -> ClientFile:
        answer = self._ask({"kind": "read", "path": str(path)})
        try:
            return ClientFile(base64.b64decode(answer["data"], validate=True), int(answer["mode"]))
        except (KeyError, TypeError, ValueError):
            raise ProtocolError("the client's answer to a read is malformed") from None

    def write_file(self, path: Path, data: bytes) -> None:
        self._ask({"kind": "write", "path": str(path),
                   "data": base64.b64encode(data).decode("ascii")})

    def make_dir(self, path: Path, private: bool = False) -> None:
        self._ask({"kind": "mkdir", "path": str(path), "private": private})

    # Streaming, for files larger than one message (`provide batch`): a range of a file,
    # an append (the first one creates the file 0600, or empties it), a rename that
    # never replaces, and whether a path exists.

    def read_range(self, path: Path, offset: int, size: int) -> tuple[bytes, int]:
        """``size`` bytes (at most) of ``path`` from ``offset``, and the file's length."""
        answer = self._ask({"kind": "read", "path": str(path), "offset": offset, "size": size})
        try:
            return base64.b64decode(answer["data"], validate=True), int(answer["length"])
        except (KeyError, TypeError, ValueError):
            raise ProtocolError("the client's answer to a ranged read is malformed") from None

    def append_file(self, path: Path, data: bytes, new: bool = False) -> None:
        self._ask({"kind": "append", "path": str(path), "new": new,
                   "data": base64.b64encode(data).decode("ascii")})

    def rename_file(self, path: Path, target: Path) -> None:
        self._ask({"kind": "rename", "path": str(path), "to": str(target)})

    def exists(self, path: Path) -> bool:
        return bool(self._ask({"kind": "exists", "path": str(path)}).get("exists"))


def refused_option(argv: list[str]) -> str | None:
    """A global option a client may not give: the station (the service's), or the APDU
    trace (it would show card data before the provision is recorded)."""
    verbosity = 0
    for arg in argv:
        if arg == "--":
            break
        for option in CLIENT_FORBIDDEN_OPTIONS:
            if arg == option or arg.startswith(option + "="):
                return option
        if arg == "--verbose" or (arg.startswith("-v") and set(arg[1:]) == {"v"}):
            verbosity += 1 if arg == "--verbose" else len(arg) - 1
    return "-vvv" if verbosity > MAX_CLIENT_VERBOSITY else None


def serve_request(channel: Channel, caller: Caller, home: Path,
                  run: Callable[[list[str]], int]) -> None:
    """Read the client's call, run its command as ``caller``, send the exit status."""
    try:
        call = parameters_of(channel.receive(CALL_TIMEOUT_S), "io.juki.Station.Run")
        if call.get("version") != PROTOCOL_VERSION:
            channel.error(f"protocol version {call.get('version')!r} is not "
                          f"{PROTOCOL_VERSION}: update the juki client")
            return
        argv = [str(a) for a in call.get("argv", [])]
    except (ProtocolError, TypeError) as exc:
        channel.error(str(exc))
        return
    option = refused_option(argv)
    if option is not None or is_local_command(argv):
        reason = ("the APDU trace (-vvv) is not served to clients: it would show card data "
                  "before it is recorded" if option == "-vvv" else
                  f"{option} is the station service's to choose, not the client's" if option
                  else "the rig, emulator, demo, serve, enroll-registry and registry commands "
                       "run only locally")
        channel.reply({"stderr": f"juki: error: {reason}\n"})
        channel.reply({"exit": int(ExitCode.USAGE)}, more=False)
        return
    environment = call.get("environment") or {}
    if caller.uid == 0 and isinstance(environment, dict):
        for name in PASSED_ENVIRONMENT:
            if isinstance(environment.get(name), str):
                os.environ[name] = environment[name]
    _run_redirected(channel, caller, bool(call.get("stdin_tty")), home, argv, run)


def _run_redirected(channel: Channel, caller: Caller, stdin_tty: bool, home: Path,
                    argv: list[str], run: Callable[[list[str]], int]) -> None:
    terminal = RemoteTerminal(channel, stdin_tty)
    CURRENT_CALLER.set(caller)
    CURRENT_TERMINAL.set(terminal)
    sys.stdout = RemoteStream(channel, "stdout")  # type: ignore[assignment]
    sys.stderr = RemoteStream(channel, "stderr")  # type: ignore[assignment]
    logging.getLogger().handlers.clear()
    try:
        code = run(["--home", str(home), *argv])
    except ProtocolError as exc:
        log.warning("request of %s abandoned: %s", caller.label, exc)
        return
    except Exception:  # a bug: the client gets a clean failure, the service log the trace
        log.exception("request of %s failed", caller.label)
        code = ExitCode.STATION
        channel.reply({"stderr": "juki: error: internal error in the station service "
                                 "(see its log)\n"})
    channel.reply({"exit": int(code)}, more=False)
