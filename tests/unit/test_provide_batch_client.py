"""`provide batch` through the station service, below the socket: the request copied a
range at a time through the client, the client's ranged read, appends (created 0600,
emptied when new), a rename that never replaces, and paths off the command line refused."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest

from tools.cli import provide
from tools.service.client import Client
from tools.station.caller import CURRENT_TERMINAL


class RangedTerminal:
    def __init__(self, data: bytes) -> None:
        self.data, self.asks = data, 0

    def read_range(self, path: Path, offset: int, size: int) -> tuple[bytes, int]:
        self.asks += 1
        return self.data[offset:offset + size], len(self.data)


def test_the_request_is_copied_a_range_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    data = b"record_code\n" + b"28374650191\n" * 1000
    term = RangedTerminal(data)
    monkeypatch.setattr(provide, "RANGE", 1000)
    token = CURRENT_TERMINAL.set(term)  # type: ignore[arg-type]
    try:
        copy = io.BytesIO()
        provide._copy_request(Path("r.csv"), copy)
    finally:
        CURRENT_TERMINAL.reset(token)
    assert copy.getvalue() == data and term.asks == 13


class Silent:
    def send(self, _message: dict) -> None:
        raise AssertionError("no message expected")


def client(tmp_path: Path, *argv: str) -> Client:
    return Client(Silent(), ["provide", "batch", *argv])  # type: ignore[arg-type]


def test_client_ranged_read_append_and_rename(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "req.csv").write_bytes(b"0123456789")
    c = client(tmp_path, "req.csv", "--out", "out.csv")
    got = c.answer({"kind": "read", "path": "req.csv", "offset": 3, "size": 4})
    assert base64.b64decode(got["data"]) == b"3456" and got["length"] == 10
    partial = tmp_path / "out.csv.partial"
    partial.write_text("old and readable")
    partial.chmod(0o644)
    for data, new in ((b"head\n", True), (b"row\n", False)):
        assert c.answer({"kind": "append", "path": "out.csv.partial", "new": new,
                         "data": base64.b64encode(data).decode()}) == {}
    assert partial.read_bytes() == b"head\nrow\n" and partial.stat().st_mode & 0o777 == 0o600
    assert c.answer({"kind": "exists", "path": "out.csv"}) == {"exists": False}
    assert c.answer({"kind": "rename", "path": "out.csv.partial", "to": "out.csv"}) == {}
    assert (tmp_path / "out.csv").read_bytes() == b"head\nrow\n" and not partial.exists()
    partial.write_text("x")
    refused = c.answer({"kind": "rename", "path": "out.csv.partial", "to": "out.csv"})
    assert "exists" in refused["error"] and (tmp_path / "out.csv").read_bytes() == b"head\nrow\n"


def test_client_refuses_paths_off_its_command_line(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out.csv.partial").write_text("x")
    c = client(tmp_path, "req.csv", "--out", "out.csv")
    for ask in ({"kind": "append", "path": "/etc/cron.d/x", "new": True, "data": ""},
                {"kind": "rename", "path": "out.csv.partial", "to": "/root/.bashrc"},
                {"kind": "read", "path": "/etc/shadow", "offset": 0, "size": 10},
                {"kind": "read", "path": "req.csv", "offset": -1, "size": 10}):
        assert "error" in c.answer(ask), ask
    assert not Path("/etc/cron.d/x").exists()
