"""Attacks on `provide batch`'s result file (issue 14 security review): a request whose
``ref`` is a spreadsheet formula, a registry name that is one, and a planted
``OUT.partial`` (a symlink elsewhere, or an older world-readable file). The agency opens
the result in a spreadsheet; the result holds identity information."""

from __future__ import annotations

import base64
import csv
import io
import os
from pathlib import Path

import pytest

from tests.unit import test_provide_batch as base
from tests.unit.test_provide_batch import RELEASE, Token, resident, run
from tools.audit.batch_provision import FileResult, provide_batch
from tools.audit.batch_request import check
from tools.registry import Registry
from tools.service.client import Client

token = base.token  # the fake token fixture (MAC, head)


def test_a_formula_in_ref_or_in_a_name_comes_back_as_text(registry: Registry, token: Token,
                                                          tmp_path: Path) -> None:
    code = resident(registry, "S1", name="=HYPERLINK(\"http://x\")", address="@SUM(1)")
    refs = ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)", "＝1+1", "plain-ref"]
    lines = "".join(f"\"{r.replace(chr(34), chr(34) * 2)}\",{code}\n" for r in refs)
    _, result, _ = run(registry, tmp_path, "ref,record_code\n" + lines)
    assert [r["ref"] for r in result] == ["'" + r for r in refs[:-1]] + ["plain-ref"]
    assert {(r["name"], r["address"]) for r in result} == {
        ("'=HYPERLINK(\"http://x\")", "'@SUM(1)")}
    raw = (tmp_path / "result.csv").read_text(encoding="utf-8")
    assert not any(cell.startswith(("=", "+", "-", "@", "＝"))
                   for row in csv.reader(io.StringIO(raw)) for cell in row)


def test_a_planted_partial_symlink_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    target = tmp_path / "victim"
    target.write_text("precious")
    (tmp_path / "out.csv.partial").symlink_to(target)
    with pytest.raises(OSError):
        FileResult(tmp_path / "out.csv")
    assert target.read_text() == "precious"


def test_an_older_readable_partial_is_made_private(registry: Registry, token: Token,
                                                   tmp_path: Path) -> None:
    code = resident(registry, "S1")
    partial = tmp_path / "result.csv.partial"
    partial.write_text("older")
    partial.chmod(0o644)
    token.fail_after = 0  # the result stays OUT.partial: its mode is what the agency gets
    request = io.BytesIO(f"record_code\n{code}\n".encode())
    _, digest = check(request)
    request.seek(0)
    with pytest.raises(Exception, match="no row was provided"):
        provide_batch(registry, None, RELEASE, request, digest,  # type: ignore[arg-type]
                      FileResult(tmp_path / "result.csv"), lambda _n: None)
    assert partial.stat().st_mode & 0o777 == 0o600
    assert partial.read_text() == ",".join(["row", "ref", "status", "record_code", "name",
                                            "birth_date", "sex", "address", "changed_on",
                                            "entry"]) + "\n"


def test_the_finished_result_never_replaces_a_file_made_meanwhile(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    sink = FileResult(out)
    sink.write("row\n")
    out.write_text("someone else's")  # appeared after the command checked --out
    with pytest.raises(FileExistsError):
        sink.finish(complete=True)
    assert out.read_text() == "someone else's"


def test_the_client_refuses_a_planted_partial_symlink(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "victim"
    target.write_text("precious")
    os.chmod(target, 0o644)
    (tmp_path / "out.csv.partial").symlink_to(target)
    c = Client(None, ["provide", "batch", "req.csv", "--out", "out.csv"])  # type: ignore[arg-type]
    answer = c.answer({"kind": "append", "path": "out.csv.partial", "new": True,
                       "data": base64.b64encode(b"head\n").decode()})
    assert "error" in answer
    assert target.read_text() == "precious" and target.stat().st_mode & 0o777 == 0o644


class _Endless(io.RawIOBase):
    """A request of one line that never ends: ``size`` bytes of ``a``, no newline."""

    def __init__(self, size: int) -> None:
        self.left, self.served = size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def, override]
        n = min(len(buffer), self.left)
        buffer[:n] = b"a" * n
        self.left -= n
        self.served += n
        return n


def test_an_endless_line_is_refused_without_reading_it_whole() -> None:
    from tools.audit.batch_request import MAX_LINE
    from tools.errors import RequestError

    source = _Endless(1 << 30)  # 1 GiB in one line: the old reader held all of it
    with pytest.raises(RequestError, match=f"line longer than {MAX_LINE} characters"):
        check(io.BufferedReader(_Prefixed(b"record_code,ref\n", source)))  # type: ignore[arg-type]
    assert source.served < 4 * MAX_LINE + (1 << 17)  # stopped near the limit


class _Prefixed(io.RawIOBase):
    def __init__(self, head: bytes, rest: io.RawIOBase) -> None:
        self.head, self.rest = head, rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def, override]
        if self.head:
            n = min(len(buffer), len(self.head))
            buffer[:n], self.head = self.head[:n], self.head[n:]
            return n
        return self.rest.readinto(buffer)


def test_rows_under_the_line_limit_still_parse(registry: Registry, token: Token,
                                               tmp_path: Path) -> None:
    code = resident(registry, "S1")
    ref = "x," * 31 + "y"  # 63 characters, quoted: commas inside
    _, result, _ = run(registry, tmp_path, f"ref,record_code\n\"{ref}\",{code}\n")
    assert [r["ref"] for r in result] == [ref]
