"""The request file of `juki provide batch`: an agency's CSV of record codes, or of the
4 information to match (UTF-8, a header row).

Two forms, chosen by the header: ``record_code`` or ``name,birth_date,sex,address``,
each with optional ``ref`` (the agency's own reference, echoed back, never recorded)
and ``known_as_of`` (YYYY-MM-DD: what the agency holds is current as of that day).
Any other column, a duplicate, a short or long row, a bad value: ``RequestError``
naming the row and the column. The command reads the whole file once (``check``)
before anything is recorded, so a malformed file records and releases nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from cardlib.checkdigits import resident_code_check_digit

from ..errors import RequestError

CODE_FORM = ("record_code",)
FOUR_FORM = ("name", "birth_date", "sex", "address")
OPTIONAL = ("ref", "known_as_of")
SEX_CODES = ("1", "2", "9")  # JIS X 0303, as the issuance request
MAX_FIELD = 200  # characters: a name or an address of the registry is far shorter
MAX_REF = 64
MAX_LINE = 64 * 1024  # characters of one line: a row of the longest fields is far shorter


@dataclass(frozen=True)
class RequestRow:
    number: int  # data rows from 1 (the header is not counted)
    ref: str
    known_as_of: dt.date | None
    record_code: str | None = None
    four: tuple[str, str, str, str] | None = None  # name, birth_date, sex, address


class HashingReader(io.RawIOBase):
    """A binary stream that hashes (SHA-256) what is read through it."""

    def __init__(self, source: IO[bytes]) -> None:
        self._source, self.digest = source, hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        data = self._source.read(len(buffer))
        self.digest.update(data)
        buffer[:len(data)] = data
        return len(data)


def _form(header: list[str]) -> tuple[str, ...]:
    seen: set[str] = set()
    for column in header:
        if column in seen:
            raise RequestError(f"header, column {column!r}", "appears twice")
        seen.add(column)
        if column not in (*CODE_FORM, *FOUR_FORM, *OPTIONAL):
            raise RequestError(f"header, column {column!r}", "unknown column; a request has "
                               "record_code, or name,birth_date,sex,address (and optionally "
                               "ref, known_as_of)")
    for form in (CODE_FORM, FOUR_FORM):
        if seen - set(OPTIONAL) == set(form):
            return form
    raise RequestError("header", "needs record_code, or all of name,birth_date,sex,address "
                                 "(not both, not part)")


def _text(where: str, value: str, limit: int, empty_ok: bool = False) -> str:
    if not value and not empty_ok:
        raise RequestError(where, "is empty")
    if len(value) > limit:
        raise RequestError(where, f"is longer than {limit} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn") for ch in value):
        raise RequestError(where, "contains a control or unassigned character")
    return value


def _date(where: str, value: str) -> dt.date:
    try:
        if len(value) != 10:
            raise ValueError(value)
        return dt.date.fromisoformat(value)
    except ValueError:
        raise RequestError(where, f"{value[:20]!r} is not a date YYYY-MM-DD") from None


def _code(where: str, value: str) -> str:
    if len(value) != 11 or not value.isascii() or not value.isdigit():
        raise RequestError(where, "is not an 11-digit record code")
    if resident_code_check_digit(value[:10]) != int(value[10]):
        raise RequestError(where, "has a wrong check digit")
    return value


def _row(number: int, line: int, header: list[str], form: tuple[str, ...],
         values: list[str]) -> RequestRow:
    if len(values) != len(header):
        raise RequestError(f"row {number} (line {line})",
                           f"has {len(values)} fields; the header has {len(header)}")
    cells = dict(zip(header, values, strict=True))

    def at(column: str) -> str:
        return f"row {number} (line {line}), column {column}"

    ref = _text(at("ref"), cells.get("ref", ""), MAX_REF, empty_ok=True)
    known = cells.get("known_as_of", "")
    known_as_of = _date(at("known_as_of"), known) if known else None
    if form == CODE_FORM:
        return RequestRow(number, ref, known_as_of, record_code=_code(at("record_code"),
                                                                     cells["record_code"]))
    name = _text(at("name"), cells["name"], MAX_FIELD)
    birth = _date(at("birth_date"), cells["birth_date"]).isoformat()
    if cells["sex"] not in SEX_CODES:
        raise RequestError(at("sex"), f"must be one of {', '.join(SEX_CODES)} (JIS X 0303)")
    address = _text(at("address"), cells["address"], MAX_FIELD)
    return RequestRow(number, ref, known_as_of, four=(name, birth, cells["sex"], address))


def _bounded_lines(text: IO[str]) -> Iterator[str]:
    """The lines of ``text``, refused past ``MAX_LINE`` characters: csv reads a whole line
    before its field limit applies, so a file of one endless line would fill memory."""
    while line := text.readline(MAX_LINE + 1):
        if len(line) > MAX_LINE and not line.endswith(("\n", "\r")):
            raise RequestError("request", f"has a line longer than {MAX_LINE} characters "
                                          "(no request row is that long)")
        yield line


def parse(stream: IO[bytes]) -> Iterator[RequestRow]:
    """The rows of a request, one at a time (memory stays flat whatever its length)."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")  # type: ignore[arg-type]
    reader = csv.reader(_bounded_lines(text), strict=True)
    number = 0
    try:
        header = next(reader, None)
        if header is None:
            raise RequestError("header", "the request is empty")
        form = _form(header)
        for values in reader:
            if not values:
                continue  # a blank line (a trailing one, typically) is no row
            number += 1
            yield _row(number, reader.line_num, header, form, values)
    except UnicodeDecodeError:
        raise RequestError(f"row {number + 1}", "is not UTF-8") from None
    except csv.Error as exc:
        raise RequestError(f"row {number + 1}", f"is not valid CSV ({exc})") from None
    finally:
        text.detach()


def form_of(stream: IO[bytes]) -> str:
    """``record_code`` or ``four``: which form the (already checked) request has."""
    for row in parse(stream):
        return "record_code" if row.record_code is not None else "four"
    return "record_code"


def check(stream: IO[bytes]) -> tuple[int, str]:
    """Read the whole request: (rows, SHA-256 hex of its bytes); ``RequestError`` at the
    first bad row."""
    hashing = HashingReader(stream)
    buffered = io.BufferedReader(hashing, 1 << 16)
    count = sum(1 for _ in parse(buffered))  # type: ignore[arg-type]
    while buffered.read(1 << 16):  # what csv left unread still counts
        pass
    return count, hashing.digest.hexdigest()
