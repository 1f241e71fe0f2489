"""The wire protocol between ``juki`` (the client) and the station service.

Framing and message shape follow varlink: every message is one JSON object, UTF-8,
terminated by a NUL byte, on a Unix stream socket. A call is
``{"method": "io.juki.Station.Run", "parameters": {...}}``; the service answers with
replies ``{"parameters": {...}, "continues": true}`` and ends with one reply without
``continues`` (or an ``{"error": NAME, "parameters": {"message": ...}}``). Unlike plain
varlink, a reply may carry an ``ask`` (a PIN prompt, the client's stdin, a file the
command reads or writes), which the client answers with one
``{"method": "io.juki.Station.Answer", "parameters": {...}}`` before the call goes on.
docs/protocol.md describes every message.
"""

from __future__ import annotations

import json
import socket
from typing import Any

PROTOCOL_VERSION = 1
INTERFACE = "io.juki.Station"
RUN = f"{INTERFACE}.Run"
ANSWER = f"{INTERFACE}.Answer"
PROTOCOL_ERROR = f"{INTERFACE}.ProtocolError"
DEFAULT_SOCKET = "/run/juki/juki.sock"
MAX_MESSAGE = 16 * 1024 * 1024  # a batch file or a document to sign fits; more is refused
TERMINATOR = b"\0"


# Run where typed, never sent to (nor served by) the service: they stand for the
# physical world (the rig, emulated cards, the demo), are the service itself, or act with
# an OS account's own authority: the station's TLS enrolment, the registry operator's
# commands (tools.station.scopes.LOCAL_ONLY).
LOCAL_COMMANDS = (("rig",), ("emulator",), ("demo",), ("station", "serve"),
                  ("station", "enroll-registry"), ("registry",))
GLOBAL_OPTIONS_WITH_VALUE = ("--home", "--db")


def command_words(argv: list[str]) -> list[str]:
    """The command path of ``argv`` (global options skipped)."""
    words, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in GLOBAL_OPTIONS_WITH_VALUE:
            skip = True
        elif not arg.startswith("-"):
            words.append(arg)
    return words


def is_local_command(argv: list[str]) -> bool:
    words = command_words(argv)
    return any(tuple(words[:len(local)]) == local for local in LOCAL_COMMANDS)


class ProtocolError(Exception):
    """The peer broke the protocol (oversized, malformed or unexpected message)."""


class Channel:
    """One connected socket, read and written a message at a time."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._pending = b""

    def send(self, message: dict[str, Any]) -> None:
        data = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        if len(data) > MAX_MESSAGE:
            raise ProtocolError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE}")
        self.sock.sendall(data + TERMINATOR)

    def receive(self, timeout: float | None = None) -> dict[str, Any]:
        """The next message, within ``timeout`` seconds if given; ``ProtocolError`` if
        the peer closed, stayed silent or sent garbage."""
        self.sock.settimeout(timeout)
        try:
            while TERMINATOR not in self._pending:
                if len(self._pending) > MAX_MESSAGE:
                    raise ProtocolError(f"message longer than {MAX_MESSAGE} bytes")
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ProtocolError("the peer closed the connection mid-call")
                self._pending += chunk
        except TimeoutError:
            raise ProtocolError(f"no message within {timeout:g} s") from None
        finally:
            self.sock.settimeout(None)
        raw, _, self._pending = self._pending.partition(TERMINATOR)
        try:
            message = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise ProtocolError("a message is not UTF-8 JSON of a sane depth") from None
        if not isinstance(message, dict):
            raise ProtocolError("a message is not a JSON object")
        return message

    def reply(self, parameters: dict[str, Any], *, more: bool = True) -> None:
        self.send({"parameters": parameters, **({"continues": True} if more else {})})

    def error(self, message: str) -> None:
        self.send({"error": PROTOCOL_ERROR, "parameters": {"message": message}})


def parameters_of(message: dict[str, Any], method: str) -> dict[str, Any]:
    """The parameters of a call to ``method``; ``ProtocolError`` for anything else."""
    if message.get("method") != method or not isinstance(message.get("parameters"), dict):
        raise ProtocolError(f"expected a call to {method}")
    return message["parameters"]
