"""`juki provide batch`: answer an agency's request file in chunks, each chunk's
provisions group-committed (``provision.record_many``) before its results are written.

Per chunk (``CHUNK`` rows): the registry's answers (``batch_match.Lookup``, a few
queries), then one entry per row that gives anything about a resident (its fields,
resident, record code; ``detail`` names the request's SHA-256 and the row, never a
name or an address), plus one entry for the chunk's ``no-match`` rows (their count and
row range: they give nothing about a resident, but the answer "no such resident" was
given to that recipient), all in one transaction with one token MAC; only after the
COMMIT are the chunk's result lines written. A failure stops the batch: the chunks
committed before it are in the result, the failing one is not (``BatchInterruptedError``
says which rows were provided).
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from hsm.token import Hsm

from ..errors import ProvisionNotRecordedError
from ..registry import Registry
from .batch_match import CHANGED, MATCH, NO_MATCH, Answer, Lookup
from .batch_request import RequestRow, parse
from .provision import Provided, Release, record_many

CHUNK = 1000
RESULT_COLUMNS = ("row", "ref", "status", "record_code", "name", "birth_date", "sex",
                  "address", "changed_on", "entry")


class BatchInterruptedError(ProvisionNotRecordedError):
    """The batch stopped mid-way; the message says which rows were provided."""


class ResultSink(Protocol):
    def write(self, text: str) -> None: ...
    def finish(self, complete: bool) -> Path: ...


@dataclass
class Summary:
    request_sha256: str
    rows: int = 0
    matched: int = 0
    no_match: int = 0
    changed_since: int = 0
    entries: int = 0
    first_index: int | None = None
    last_index: int | None = None
    seconds: float = 0.0
    result: str | None = None

    def as_json(self) -> dict[str, object]:
        return dict(vars(self))


def _chunks(rows: Iterator[RequestRow], size: int) -> Iterator[list[RequestRow]]:
    chunk: list[RequestRow] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _items(answers: list[Answer], digest: str) -> tuple[list[Provided], list[Answer]]:
    """The chunk's entries, and the answers in the order of their entries (the
    no-match summary last, for the rows that gave nothing)."""
    giving = [a for a in answers if a.status != NO_MATCH]
    items = [Provided(a.fields, a.resident_id, a.record_code,
                      f"batch request sha256:{digest} row {a.row.number}") for a in giving]
    misses = [a.row.number for a in answers if a.status == NO_MATCH]
    if misses:
        items.append(Provided((), None, None, f"batch request sha256:{digest} rows "
                              f"{answers[0].row.number}-{answers[-1].row.number}: "
                              f"{len(misses)} without a match (nothing about a resident)"))
    return items, giving


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def _cell(text: str) -> str:
    """A text cell a spreadsheet will not run: the agency opens the result in one, and
    ``ref`` is the requester's own text (``=HYPERLINK(...)``, ``=cmd|...``), names and
    addresses the registry's; a leading ``'`` makes such a cell plain text (OWASP CSV
    injection). Full-width signs too: some spreadsheets read them as formulas."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _lines(answers: list[Answer], entries: dict[int, int], summary_entry: int | None) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for a in answers:
        name, birth, sex, address = a.identity or ("", "", "", "")
        entry = entries.get(a.row.number, summary_entry)
        writer.writerow([a.row.number, _cell(a.row.ref), a.status, a.record_code or "",
                         _cell(name), birth, sex, _cell(address), a.changed_on or "",
                         "" if entry is None else entry])
    return out.getvalue()


def _tally(summary: Summary, answers: list[Answer], indexes: list[int]) -> None:
    summary.rows += len(answers)
    summary.matched += sum(a.status == MATCH for a in answers)
    summary.changed_since += sum(a.status == CHANGED for a in answers)
    summary.no_match += sum(a.status == NO_MATCH for a in answers)
    if indexes:
        summary.entries += len(indexes)
        summary.first_index = indexes[0] if summary.first_index is None else summary.first_index
        summary.last_index = indexes[-1]


def provide_batch(registry: Registry, hsm: Hsm, release: Release, request: IO[bytes],
                  digest: str, sink: ResultSink, progress: Callable[[int], None],
                  chunk_size: int = CHUNK) -> Summary:
    """Answer, record and write every chunk of ``request`` (already checked whole: see
    ``batch_request.check``); see the module docstring."""
    started, summary = time.monotonic(), Summary(digest)
    lookup = Lookup(registry.connection(), release.zone)
    sink.write(",".join(RESULT_COLUMNS) + "\n")
    for chunk in _chunks(parse(request), chunk_size):
        try:
            answers = lookup.answer(chunk)
            items, giving = _items(answers, digest)
            indexes = record_many(registry, hsm, release, items) if items else []
        except Exception as exc:
            summary.seconds = round(time.monotonic() - started, 3)
            done = sink.finish(complete=False)
            provided = (f"rows 1-{summary.rows} were provided and recorded (entries "
                        f"{summary.first_index}-{summary.last_index}), their results are in "
                        f"{done}" if summary.rows else "no row was provided")
            raise BatchInterruptedError(
                f"the batch stopped at row {chunk[0].number}: {provided}; rows "
                f"{chunk[0].number}- were neither recorded nor provided ({exc})") from exc
        entries = {a.row.number: i for a, i in zip(giving, indexes, strict=False)}
        summary_entry = indexes[-1] if len(items) > len(giving) else None
        try:
            sink.write(_lines(answers, entries, summary_entry))  # only after the COMMIT
        except OSError as exc:
            raise _unwritten(summary, chunk[0].number, indexes, exc) from exc
        _tally(summary, answers, indexes)
        progress(len(chunk))
    try:
        summary.result = str(sink.finish(complete=True))
    except OSError as exc:
        raise BatchInterruptedError(
            f"every row was recorded (entries {summary.first_index}-{summary.last_index}) but "
            f"the result could not be completed ({type(exc).__name__}: {exc}): it stays in the "
            "partial file, nothing was replaced") from exc
    summary.seconds = round(time.monotonic() - started, 3)
    return summary


def _unwritten(summary: Summary, first_row: int, indexes: list[int],
               exc: OSError) -> BatchInterruptedError:
    """A result write failed after its chunk committed: those rows are recorded but were
    not released (the safe direction); the message says which, never a traceback."""
    recorded = f" (entries {indexes[0]}-{indexes[-1]})" if indexes else ""
    return BatchInterruptedError(
        f"the result could not be written ({type(exc).__name__}: {exc}): rows {first_row}- "
        f"were recorded{recorded} but not released; rows before {first_row} are in the "
        "partial result")


class FileResult:
    """The result written as it goes to ``OUT.partial`` (0600: it holds identity
    information), renamed to ``OUT`` once complete; an interrupted batch leaves
    ``OUT.partial`` with exactly the committed chunks, never a half-written ``OUT``."""

    def __init__(self, path: Path) -> None:
        self.path, self.partial = path, path.with_name(path.name + ".partial")
        fd = os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        os.fchmod(fd, 0o600)  # an older OUT.partial's mode would leave it readable
        self._file = os.fdopen(fd, "w", encoding="utf-8", newline="")

    def write(self, text: str) -> None:
        self._file.write(text)
        self._file.flush()

    def finish(self, complete: bool) -> Path:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        if complete:
            os.link(self.partial, self.path)  # FileExistsError: never replaces an OUT made
            os.unlink(self.partial)  # since the command checked it
            return self.path
        return self.partial


class ClientResult:
    """The result through the caller's client (the station service never opens a caller's
    path): appended chunk by chunk to ``OUT.partial`` (the client creates it 0600), renamed
    to ``OUT`` once complete (never replacing a file); memory stays flat."""

    def __init__(self, path: Path, append: Callable[[Path, bytes, bool], None],
                 rename: Callable[[Path, Path], None]) -> None:
        self.path, self.partial = path, path.with_name(path.name + ".partial")
        self._append, self._rename = append, rename
        append(self.partial, b"", True)

    def write(self, text: str) -> None:
        self._append(self.partial, text.encode("utf-8"), False)

    def finish(self, complete: bool) -> Path:
        if complete:
            self._rename(self.partial, self.path)
            return self.path
        return self.partial
