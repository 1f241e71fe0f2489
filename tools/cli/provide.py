"""`juki provide ...`: provision of 本人確認情報 to recipients (agencies), in bulk."""

from __future__ import annotations

import shutil
import sys
import tempfile
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import click

from .common import (
    LocalTerminal,
    client_path,
    emit,
    json_option,
    provision_release,
    station,
    terminal,
)

RANGE = 4 * 1024 * 1024  # bytes of the request per ask to the client


@click.group("provide")
def provide() -> None:
    """Provide identity information to a recipient for a permitted purpose."""


def _copy_request(path: Path, copy: Any) -> None:
    """The request into a private, unnamed temporary file: both passes (the check, then
    the chunks) read the same bytes, whatever happens to the caller's file meanwhile."""
    from ..errors import RequestError

    term = terminal()
    try:
        if isinstance(term, LocalTerminal):
            with path.open("rb") as source:
                shutil.copyfileobj(source, copy, 1 << 20)
        else:  # the client reads it, a range at a time (the station service never
            offset, length = 0, 1  # opens a caller's path: tools.service.remote)
            while offset < length:
                data, length = term.read_range(path, offset, RANGE)  # type: ignore[attr-defined]
                if not data and offset < length:
                    raise OSError(f"{path} shrank while it was read")
                copy.write(data)
                offset += len(data)
    except OSError as exc:
        raise RequestError("request", f"{path}: {exc.strerror or exc}") from None
    copy.seek(0)


def _sink(out: Path) -> Any:
    from ..audit.batch_provision import ClientResult, FileResult
    from ..errors import RequestError

    term: Any = terminal()
    if not isinstance(term, LocalTerminal):  # the station service's RemoteTerminal
        if term.exists(out):
            raise RequestError("--out", f"{out} exists: name a new file")
        return ClientResult(out, term.append_file, term.rename_file)
    if out.exists():
        raise RequestError("--out", f"{out} exists: name a new file")
    try:
        return FileResult(out)
    except OSError as exc:
        raise RequestError("--out", f"{out}: {exc.strerror or exc}") from None


def _summary_text(summary: Any) -> str:
    span = (f", entries {summary.first_index}-{summary.last_index}"
            if summary.first_index is not None else "")
    return (f"rows {summary.rows}: {summary.matched} match, {summary.changed_since} "
            f"changed-since, {summary.no_match} no-match; {summary.entries} provision "
            f"entries recorded{span}; {summary.seconds:.1f} s; result {summary.result}")


@provide.command("batch")
@click.argument("request", type=client_path())
@click.option("--recipient", required=True,
              help="Agency receiving the information (`juki audit recipients`).")
@click.option("--purpose", required=True, help="Purpose code permitted to that recipient.")
@click.option("--out", type=client_path(), default=None,
              help="Result CSV (default: REQUEST's name + .result.csv; never replaced); "
                   "written as OUT.partial (0600), renamed when complete.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar on stderr (default: when stderr is a terminal).")
@click.option("--chunk", default=1000, show_default=True, type=click.IntRange(1, 5000),
              help="Rows per group commit: recorded together, then written (at most 5000: "
                   "4 parameters a row stay under SQLite's 32,766).")
@json_option
def batch(request: Path, recipient: str, purpose: str, out: Path | None,
          progress: bool | None, chunk: int, as_json: bool) -> None:
    """Answer an agency's REQUEST.csv: record_code (or name,birth_date,sex,address),
    optionally ref and known_as_of. Each row gets match (the current 本人確認情報),
    changed-since (with the current code and the day of the change) or no-match; every
    answer is recorded in the provision log before it is written."""
    from ..audit.batch_provision import provide_batch
    from ..audit.batch_request import check

    release = provision_release(recipient, purpose, required=True)  # a refusal is recorded
    st = station()
    with tempfile.TemporaryFile() as copy:
        _copy_request(request, copy)
        rows, digest = check(copy)  # a malformed file records and releases nothing
        copy.seek(0)
        sink = _sink(out or request.with_name(request.name + ".result.csv"))
        show = sys.stderr.isatty() if progress is None else progress
        bar = (click.progressbar(length=rows, label="provide batch", file=sys.stderr)
               if show else nullcontext(None))
        if progress and bar is not None and hasattr(bar, "is_hidden"):
            bar.is_hidden = False  # asked for: drawn even where stderr is no terminal
        with bar as shown:
            summary = provide_batch(st.registry, st.hsm, release, copy, digest, sink,
                                    shown.update if shown is not None else lambda _n: None,
                                    chunk)
    emit(as_json, summary.as_json(), lambda: _summary_text(summary))
