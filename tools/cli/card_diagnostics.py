"""``juki card dump / check``: a resident card's files saved with their physical bytes,
and a diagnostic of a card or of a dump (joined to ``juki card`` by ``card``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .common import (
    LOCAL_TERMINAL,
    ExitCode,
    authenticated_card,
    card_options,
    client_path,
    collect_credential,
    emit,
    json_option,
    pin_file_option,
    presented,
    provision_release,
    purpose_option,
    read_client_file,
    recipient_option,
    record_provision,
    terminal,
    trust_store,
)

optional_credential_option = click.option(
    "--with", "credential", type=click.Choice(["pin", "a", "b"]), default=None,
    help="Present the card-info PIN, 照合番号A or 照合番号B first (read like PINs: "
         "--pin-file names card_info / collation_a / collation_b, else stdin or a prompt); "
         "A and B are also presented to the surface AP's key of the same value.")


def _credential(credential: str | None, pin_file: Path | None):  # type: ignore[no-untyped-def]
    from ..resident.card_info import CREDENTIAL_KEYS, Credential

    if credential is None:
        return None, None
    name, secret = collect_credential(credential, pin_file)
    return Credential(CREDENTIAL_KEYS[name], secret), (name, secret)


def anchor_describer(store):  # type: ignore[no-untyped-def]
    """``describe(key_id)`` for `card check`: the anchor's hierarchy and source."""

    def describe(raw: bytes) -> str:
        info = store.info(raw)
        return f"{info.hierarchy}, {info.source}" if info is not None else "not an anchor"

    return describe


@click.command("dump")
@click.option("--out", "out_dir", type=client_path(), required=True,
              help="A new directory (made 0700) for <ap>/<id>.bin and index.json.")
@optional_credential_option
@recipient_option
@purpose_option
@card_options
@pin_file_option
@json_option
def card_dump(out_dir: Path, credential: str | None, recipient: str | None,
              purpose: str | None, reader: str | None, timeout: float, pin_file: Path | None,
              as_json: bool) -> None:
    """Every file readable now, per application, with its physical bytes (filler
    included), MF GET DATA objects as mf/<tag>.bin, and index.json (AP, id, size, SHA-256,
    how it was read; what was refused and its status word). With --with, what that
    credential opens: the card first proves itself (as `juki verify`), and the identity
    data in the dump is recorded as a provision to --recipient for --purpose before a
    byte is written."""
    from ..resident.card_dump import dump_card, write_dump

    release = provision_release(recipient, purpose, required=credential is not None)
    presented_credential, pair = _credential(credential, pin_file)
    store = trust_store()
    term = terminal()
    try:
        term.make_dir(out_dir, private=True)  # new, 0700: it may hold identity data
    except OSError as exc:
        raise click.UsageError(f"--out {out_dir}: must be a new directory ({exc})") from None
    with presented(reader, timeout) as (_name, channel):
        serial = authenticated_card(channel, release, pair, store) if pair is not None else None
        dump = dump_card(channel, presented_credential, store.anchors())
    fields = dump.identity_fields()
    if fields and release is None:
        raise click.UsageError(f"the card released identity data without a credential "
                               f"({', '.join(fields)}); give --recipient and --purpose")
    entry = record_provision(release, fields, serial) if fields else None
    for ap in sorted({f.ap for f in dump.files}):
        term.make_dir(out_dir / ap)

    def write(relative: str, data: bytes) -> None:
        term.write_file(out_dir / relative, data)

    write_dump(dump, write)
    payload: dict[str, Any] = {"out": str(out_dir), "files": len(dump.files),
                               "refused": list(dump.refused), "identity_fields": fields,
                               "provision_entry": entry}
    emit(as_json, payload, lambda: "\n".join(
        [f"{f.path:22} {len(f.data):6} bytes  {f.how}" for f in dump.files]
        + [f"refused {r['ap']}/{r['id']}: {r['sw']}" for r in dump.refused]
        + [f"{len(dump.files)} files in {out_dir}"]))


def _report_text(report: Any) -> str:
    lines = []
    for ap, probe in report.applications.items():
        if not isinstance(probe, dict) or "files" not in probe:
            lines.append(f"{ap:10} {probe}")
            continue
        readable = [fid for fid, f in probe["files"].items() if f.get("readable")]
        lines.append(f"{ap:10} SELECT {probe['select']}; readable now: "
                     f"{', '.join(readable) or 'none'}")
        for fid, state in probe["keys"].items():
            lines.append(f"{'':10} key {fid}: {state}")
    for finding in report.findings:
        mark = {True: "ok  ", False: "FAIL", None: "--  "}[finding.ok]
        lines.append(f"{mark} {finding.check}: {finding.detail}")
    return "\n".join(lines)


def dump_reader(from_dir: Path):  # type: ignore[no-untyped-def]
    """``read(relative)`` for `card check --from DIR`. Run locally (an administrator,
    perhaps root, checking a dump someone else made), a symbolic link in the dump is
    refused: a link to a file only the reader may read would feed it to the decoders,
    whose errors name a byte or two. Through the service the client reads as its own
    user, so nothing is gained there."""
    from cardlib.errors import CardDataError

    def read(relative: str) -> bytes:
        path = from_dir / relative
        if terminal() is LOCAL_TERMINAL and any(
                p.is_symlink() for p in (path, path.parent) if p != from_dir):
            raise CardDataError(f"dump {relative}: a symbolic link (a dump holds plain files)")
        return read_client_file(path)

    return read


@click.command("check")
@click.option("--from", "from_dir", type=client_path(), default=None,
              help="Re-verify a `juki card dump` directory offline instead of a card.")
@optional_credential_option
@card_options
@pin_file_option
@json_option
def card_check(from_dir: Path | None, credential: str | None, reader: str | None,
               timeout: float, pin_file: Path | None, as_json: bool) -> ExitCode:
    """A diagnostic: per application, whether it answers SELECT, which EFs are readable
    now (the status word of each try), every key's tries left (empty VERIFY: none
    spent); which trust anchor the MF chain (00F8/7F21) and each AP's EF 0004 chain to;
    the integrity record and its digests where readable; the face photo flagged when it
    is the placeholder. --from DIR checks a dump's files instead (chains, signatures,
    digests, each file against index.json) and names what fails. Nothing read is
    printed: verdicts only."""
    from ..resident.card_check import check_card, check_dump
    from ..resident.card_dump import load_dump

    store = trust_store()
    anchors, describe = store.anchors(), anchor_describer(store)
    if from_dir is not None:
        dump, digests = load_dump(dump_reader(from_dir))
        report = check_dump(dump, digests, anchors, describe)
    else:
        presented_credential, _ = _credential(credential, pin_file)
        with presented(reader, timeout) as (_name, channel):
            report, _dump = check_card(channel, anchors, describe, presented_credential)
    emit(as_json, report.as_json(), lambda: _report_text(report))
    return ExitCode.OK if report.ok else ExitCode.CHECK_FAILED


COMMANDS = (card_dump, card_check)
