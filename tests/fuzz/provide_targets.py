"""Fuzz target: the request CSV of `juki provide batch` (tools/audit/batch_request.py),
raw bytes (1 in 4) or CSV rows of its columns with fuzzed values. Every input gives
checked rows or a ``RequestError`` naming the row and column, nothing else; and what
parses is checked (a valid record code, or all 4 information with a known sex code)."""

from __future__ import annotations

import csv
import io

from .reader import Reader
from .registry import check, refusals, target

COLUMNS = ("record_code", "name", "birth_date", "sex", "address", "ref", "known_as_of", "x")
VALUES = ("28374650191", "28374650192", "1985-04-12", "2026-02-30", "1", "2", "9", "3",
          "山田　太郎", "", "\x00", "\x1b[2J", '"', ",", "\n", "x" * 250)


def _request(data: bytes) -> bytes:
    reader = Reader(data)
    if reader.chance(4):
        return data[1:]
    header = list(dict.fromkeys(reader.pick(COLUMNS) for _ in range(1 + reader.byte() % 6)))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for _ in range(reader.byte() % 6):
        writer.writerow([reader.pick(VALUES) if reader.byte() & 3 else
                         reader.sized(20).decode("utf-8", "replace")
                         for _ in range(len(header) + reader.byte() % 3 - 1)])
    return out.getvalue().encode("utf-8")


@target("provide_request", lambda: [bytes(64), b"\x01record_code,ref\n28374650191,A\n"])
def provide_request(data: bytes) -> None:
    from tools.audit.batch_request import check as check_request
    from tools.audit.batch_request import parse
    from tools.errors import RequestError

    text = _request(data)
    with refusals(RequestError):
        rows = list(parse(io.BytesIO(text)))
        for row in rows:
            if row.record_code is not None:
                check(len(row.record_code) == 11 and row.record_code.isdigit(),
                      f"accepted record code {row.record_code!r}")
            else:
                check(row.four is not None and all(row.four) and row.four[2] in "129",
                      f"accepted 4 information {row.four!r}")
        check(check_request(io.BytesIO(text))[0] == len(rows), "check counts other rows")
