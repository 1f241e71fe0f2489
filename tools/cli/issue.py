"""``juki issue``: personalise blank cards, alone or in batches, and clean up after
interrupted issuances."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..station.pins import ISSUANCE_PINS, ResidentCardPins
from .common import (
    ExitCode,
    card_options,
    client_path,
    collect_cli_pins,
    collect_credential,
    emit,
    json_option,
    pin_file_option,
    presented,
    read_client_file,
    station,
)


@click.group()
def issue() -> None:
    """Issue cards."""


@issue.command("resident")
@click.argument("request_file", type=client_path())
@card_options
@pin_file_option
@json_option
def issue_resident(request_file: Path, reader: str | None, timeout: float,
                   pin_file: Path | None, as_json: bool) -> None:
    """Personalise a blank card as a resident card from REQUEST_FILE (JSON)."""
    from ..issuance.request import load_request
    from ..issuance.resident_card import issue_resident_card
    from ..pki.issued import crl_base_url

    request = load_request(request_file, read_client_file)  # validated before any card I/O
    pins = ResidentCardPins.from_collected(collect_cli_pins(ISSUANCE_PINS, pin_file, confirm=True))
    st = station()
    hsm, registry = st.hsm, st.registry
    with presented(reader, timeout, kind="blank") as (name, channel):
        issued = issue_resident_card(channel, hsm, registry, request, pins,
                                     crl_base_url=crl_base_url(st.home.settings()))
    emit(as_json, issued.as_json() | {"reader": name},
         f"issued card {issued.card_serial} in {name} (expires {issued.expiry}); security "
         f"code for the card face: {issued.security_code.reveal()} (shown only now)")


@issue.command("batch")
@click.argument("batch_file", type=client_path())
@click.option("--readers", default=None,
              help="Comma-separated readers to use (default: every reader present).")
@click.option("--timeout", default=60.0, show_default=True,
              help="Seconds each reader waits for its next blank card.")
@pin_file_option
@json_option
def issue_batch(batch_file: Path, readers: str | None, timeout: float, pin_file: Path | None,
                as_json: bool) -> ExitCode:
    """Issue every request of a JSON-lines file, one card per reader as blank cards are
    inserted; bad requests are reported and skipped. Exit 0 only if all were issued."""
    from cardlib import pcsc

    from ..issuance.batch import parse_batch, run_batch
    from ..pki.issued import crl_base_url

    lines = parse_batch(batch_file, read_client_file)
    pins = ResidentCardPins.from_collected(collect_cli_pins(ISSUANCE_PINS, pin_file, confirm=True))
    st = station()
    names = ([r for wanted in readers.split(",") for r in pcsc.resolve_reader(wanted, pcsc.list_readers())]
             if readers else pcsc.list_readers())
    st.registry.migrate()
    todo = sum(1 for line in lines if line.status == "not-issued")
    with click.progressbar(length=todo, label="issuing", file=sys.stderr) as bar:
        run_batch(lines, names, st.hsm, st.registry.location, pins, timeout,
                  progress=lambda _line: bar.update(1),
                  crl_base_url=crl_base_url(st.home.settings()))
    summary = {s: sum(1 for line in lines if line.status == s)
               for s in ("issued", "rejected", "failed", "not-issued")}
    emit(as_json, {"summary": summary, "lines": [line.as_json() for line in lines]}, lambda: "\n".join(
        [f"{'line':>5}  {'status':10} {'card':15}  detail"]
        + [f"{line.line:>5}  {line.status:10} {line.card_serial or '-':15}  {line.detail}"
           + (f"; security code {line.security_code.reveal()}" if line.security_code else "")
           for line in lines]
        + [", ".join(f"{k}: {v}" for k, v in summary.items())]))
    if summary["issued"] == len(lines):
        return ExitCode.OK
    return ExitCode.USAGE if summary["rejected"] and not summary["failed"] else ExitCode.CARD


@issue.command("unfinished")
@json_option
def issue_unfinished(as_json: bool) -> ExitCode:
    """Issuances still recorded ``issuing``, and which of them were interrupted (their
    process is gone). Exit 1 if any was interrupted."""
    from ..issuance.recovery import owner_alive

    rows = station().registry.unfinished()
    report = [c.as_json() | {"interrupted": not owner_alive(c.owner)} for c in rows]
    emit(as_json, report, lambda: "\n".join(
        f"card {r['serial']}: issuing by {r['owner']}"
        + (" (INTERRUPTED)" if r["interrupted"] else "") for r in report) or "none")
    return ExitCode.CHECK_FAILED if any(r["interrupted"] for r in report) else ExitCode.OK


@issue.command("recover")
@click.option("--operation", "operation_id", type=int, default=None,
              help="Finish (or with --roll-back undo) this open card operation; its card "
                   "must be in the reader.")
@click.option("--roll-back", is_flag=True, help="With --operation: undo instead of finishing.")
@click.option("--with", "credential", type=click.Choice(["pin"]), default="pin",
              show_default=True, help="A 4-information operation needs the card-info PIN "
                                      "(pin file name card_info), never from argv.")
@card_options
@pin_file_option
@json_option
def issue_recover(operation_id: int | None, roll_back: bool, credential: str, reader: str | None,
                  timeout: float, pin_file: Path | None, as_json: bool) -> None:
    """Mark every interrupted issuance ``failed`` (its card can then be issued again) and
    list the open card operations (a running one whose process is gone is marked
    interrupted). With --operation ID and the card present: finish it (the card steps
    again to the journalled target, then the registry) or, with --roll-back, rewrite the
    card to what the registry holds."""
    from ..counter.recovery import listed, open_operations, recover_operation
    from ..issuance.recovery import fail_if_interrupted, interrupted

    st = station()
    registry = st.registry
    if operation_id is None:
        if roll_back:
            raise click.UsageError("--roll-back goes with --operation ID")
        serials = [c.serial for c in interrupted(registry)]
        for serial in serials:
            fail_if_interrupted(registry, serial)
        operations = [listed(o) for o in open_operations(registry)]
        emit(as_json, {"marked_failed": serials, "operations": operations}, lambda: "\n".join(
            [f"{len(serials)} interrupted issuance(s) marked failed"]
            + [f"operation {o['id']}: {o['kind']} of card {o['card_serial']} {o['status']}"
               f" ({o['failure'] or 'no failure recorded'}): juki issue recover --operation "
               f"{o['id']} [--roll-back]" for o in operations]))
        return
    found = registry.operation(operation_id)
    if found is not None:  # finishing or undoing it is doing it: the operation's scope too
        from ..station.scopes import OPERATION_SCOPES

        st.require(OPERATION_SCOPES.get(found.kind, "operator-admin"),
                   f"`juki issue recover` of operation {operation_id} ({found.kind})")
    needs_pin = found is not None and found.kind in ("move-in", "continue-card", "change")
    pin = collect_credential(credential, pin_file)[1] if needs_pin else None
    needs_card = found is not None and found.kind != "pin-reset"
    if not needs_card:
        result = recover_operation(None, st.hsm, registry, st.home.settings(), operation_id,
                                   pin, roll_back)
    else:
        with presented(reader, timeout) as (_name, channel):
            result = recover_operation(channel, st.hsm, registry, st.home.settings(),
                                       operation_id, pin, roll_back)
    emit(as_json, result, f"operation {operation_id}: {result['status']}")
