"""``juki`` as a client of the station service: send the command line, relay output,
answer the service's asks (PIN prompts, stdin, the files named on the command line).

Kept small and free of the command code, so that a client starts in a few
milliseconds. It holds no key, no PIN file and no database credential, and it only ever
reads or writes the paths its own command line names (or a file beside a named one,
such as ``FILE.p7s`` for ``FILE``, or the ``photo`` a named request file names),
whatever the service asks.
"""

from __future__ import annotations

import base64
import getpass
import os
import re
import socket
import sys
from pathlib import Path
from typing import Any

from ..errors import ExitCode  # an enum only: the client stays light
from .protocol import ANSWER, MAX_MESSAGE, PROTOCOL_VERSION, RUN, Channel, ProtocolError

MAX_STDIN = 1024 * 1024


def _absolute(text: str) -> Path:
    return Path(os.path.abspath(text))


def named_paths(argv: list[str]) -> set[Path]:
    """Every argument (and every ``--option=value`` value) taken as a path, but the
    command's own words (the first two; no command names a file before its third word)
    and nothing at all for ``pam-auth`` (run by root, it never needs a file)."""
    words = [arg for arg in argv if not arg.startswith("-")]
    if words[:1] == ["pam-auth"]:
        return set()
    command = words[:2]
    named = set()
    for arg in argv:
        if arg in command:
            command.remove(arg)
        elif arg and not (arg.startswith("--") and "=" not in arg):
            named.add(_absolute(arg.partition("=")[2] if arg.startswith("--") else arg))
    return named


# `card dump --out DIR` writes DIR/<ap>/<id>.bin and `card check --from DIR` reads them:
# one level deeper than "a file in a named directory", and only in that layout.
DUMP_SUBDIRS = frozenset({"mf", "card_info", "surface", "jpki", "common", "juki"})
DUMP_FILE = re.compile(r"[0-9A-F]{4}(\.[0-9]{1,2})?\.bin")


def may_touch(path: Path, named: set[Path]) -> bool:
    """A path the command line named, a file in a named directory, ``NAMED.<ext>``, or a
    dump file ``<ap>/<id>.bin`` of a named directory."""
    dump_file = path.parent.name in DUMP_SUBDIRS and DUMP_FILE.fullmatch(path.name) is not None
    return any(path == n or path.parent == n
               or (path.parent == n.parent and path.name.startswith(n.name + "."))
               or (dump_file and path.parent.parent == n)
               for n in named)


def referenced_photos(named: set[Path]) -> set[Path]:
    """The ``photo`` of every request on the command line (a request file is a JSON
    object, a batch file JSON lines), resolved against the file's directory: the service
    reads a request's photo through the client, like the request itself."""
    import json

    found = set()
    for path in named:
        try:
            if not path.is_file() or path.stat().st_size > MAX_MESSAGE:
                continue
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for line in [text, *text.splitlines()]:
            try:
                photo = json.loads(line).get("photo")
            except (ValueError, AttributeError, RecursionError):
                continue
            if isinstance(photo, str) and photo:
                found.add(_absolute(str(path.parent / photo)))
    return found


MAX_RANGE = 4 * 1024 * 1024  # raw bytes per ranged read: base64 of it fits one message


def _read_range(path: Path, offset: object, size: object) -> dict[str, Any]:
    if not isinstance(offset, int) or not isinstance(size, int) or offset < 0 or size < 0:
        return {"error": "a ranged read needs a non-negative offset and size"}
    with path.open("rb") as file:
        file.seek(offset)
        data = file.read(min(size, MAX_RANGE))
        length = os.fstat(file.fileno()).st_size
    return {"data": base64.b64encode(data).decode("ascii"), "length": length}


def _stream_ask(kind: str, path: Path, ask: dict[str, Any]) -> dict[str, Any]:
    """``append`` (``new``: create 0600 or empty the file first), ``rename`` (to a path
    that does not exist: never replaces), ``exists``."""
    if kind == "exists":
        return {"exists": path.exists()}
    if kind == "rename":
        target = _absolute(str(ask.get("to", "")))
        os.link(path, target)  # FileExistsError rather than replacing
        path.unlink()
        return {}
    flags = (os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW  # a planted symlink
             | (os.O_TRUNC if ask.get("new") else 0))  # would send the result elsewhere
    fd = os.open(path, flags, 0o600)
    try:
        if ask.get("new"):
            os.fchmod(fd, 0o600)  # private whatever the umask or an older file's mode
        data = memoryview(base64.b64decode(str(ask.get("data", ""))))
        while data:
            data = data[os.write(fd, data):]
        os.fsync(fd)
    finally:
        os.close(fd)
    return {}


class Client:
    def __init__(self, channel: Channel, argv: list[str]) -> None:
        self.channel = channel
        self.named = named_paths(argv)

    def answer(self, ask: dict[str, Any]) -> dict[str, Any]:
        kind = ask.get("kind")
        if kind == "stdin":
            data = b"" if sys.stdin.isatty() else sys.stdin.buffer.read(MAX_STDIN)
            return {"data": base64.b64encode(data).decode("ascii")}
        if kind == "secret":
            return {"value": self._secret(str(ask.get("label")), bool(ask.get("confirm")))}
        path = _absolute(str(ask.get("path", "")))
        if not may_touch(path, self.named) and not (
                kind == "read" and path in referenced_photos(self.named)):
            return {"error": f"the client refuses to touch {path}: not on its command line"}
        if kind == "rename" and not may_touch(_absolute(str(ask.get("to", ""))), self.named):
            return {"error": f"the client refuses to rename to {ask.get('to')}: not on its "
                             "command line"}
        try:
            if kind == "read" and "offset" in ask:
                return _read_range(path, ask.get("offset"), ask.get("size"))
            if kind == "read":
                return {"data": base64.b64encode(path.read_bytes()).decode("ascii"),
                        "mode": path.stat().st_mode}
            if kind in ("append", "rename", "exists"):
                return _stream_ask(kind, path, ask)
            if kind == "write":
                path.write_bytes(base64.b64decode(str(ask.get("data", ""))))
                return {}
            if kind == "mkdir" and ask.get("private") is True:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.mkdir(mode=0o700)  # a new directory only, whatever the umask
                path.chmod(0o700)
                return {}
            if kind == "mkdir":
                path.mkdir(parents=True, exist_ok=True)
                return {}
        except OSError as exc:
            return {"error": f"{path}: {exc.strerror}"}
        return {"error": f"unknown ask {kind!r}"}

    @staticmethod
    def _secret(label: str, confirm: bool) -> str:
        while True:
            value = getpass.getpass(f"{label}: ", stream=sys.stderr)
            if not confirm or getpass.getpass("Repeat for confirmation: ", stream=sys.stderr) == value:
                return value
            print("Error: The two entered values do not match.", file=sys.stderr)

    def call(self, argv: list[str]) -> int:
        environment = {k: os.environ[k] for k in ("PAM_USER",) if k in os.environ}
        self.channel.send({"method": RUN, "parameters": {
            "version": PROTOCOL_VERSION, "argv": argv, "stdin_tty": sys.stdin.isatty(),
            "environment": environment}})
        while True:
            message = self.channel.receive()
            if "error" in message:
                detail = (message.get("parameters") or {}).get("message", message["error"])
                print(f"juki: error: the station service refused the call: {detail}",
                      file=sys.stderr)
                return ExitCode.STATION
            parameters = message.get("parameters") or {}
            for name, stream in (("stdout", sys.stdout), ("stderr", sys.stderr)):
                if name in parameters:
                    stream.write(str(parameters[name]))
                    stream.flush()
            if "ask" in parameters:
                self.channel.send({"method": ANSWER, "parameters": self.answer(parameters["ask"])})
            if not message.get("continues"):
                return int(parameters.get("exit", ExitCode.STATION))


def run(socket_path: str, argv: list[str]) -> int:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(socket_path)
    except OSError as exc:
        print(f"juki: error: cannot reach the station service at {socket_path}: {exc.strerror}",
              file=sys.stderr)
        return ExitCode.STATION
    try:
        return Client(Channel(sock), argv).call(argv)
    except (ProtocolError, OSError) as exc:
        print(f"juki: error: the station service connection failed: {exc}", file=sys.stderr)
        return ExitCode.STATION
    finally:
        sock.close()
