"""``juki card list/show/suspend/resume/revoke/reissue/wipe``: cards as the registry
knows them, and the changes of their life cycle (joined to ``juki card`` by ``card``)."""

from __future__ import annotations

from pathlib import Path

import click

from ..registry.records import RegistryError
from ..registry.schema import REVOKE_REASONS
from .common import (
    card_options,
    client_path,
    collect_cli_pins,
    emit,
    json_option,
    pin_file_option,
    presented,
    read_client_file,
    record_provision,
    station,
    station_release,
)

REDACTED = "(needs read-code)"


@click.command("list")
@click.option("--status", default=None, help="Only cards in this state.")
@click.option("--expiring", "expiring_days", type=click.IntRange(min=0), default=None,
              help="Only live cards whose own expiry or a current certificate's falls within "
                   "this many days (or has passed); each row says what is due and when.")
@json_option
def card_list(status: str | None, expiring_days: int | None, as_json: bool) -> None:
    """Cards in the registry (expired ones are marked first)."""
    from ..counter.moves import run_deadlines

    st = station()
    registry = st.registry
    registry.expire_due()
    run_deadlines(registry, st.home.settings())  # cards whose continued use lapsed
    cards = registry.list(status)
    due: dict[str, list[dict[str, object]]] = {}
    if expiring_days is not None:
        from ..counter.renewal import coming_due

        due = coming_due(registry, expiring_days)
        cards = [c for c in cards if c.serial in due]
    show_codes = st.reveal("record_code")
    if show_codes:  # each resident's code shown is a provision, recorded before it is
        release = station_release("REGISTRY-ADMIN")
        for c in cards:
            if c.resident_code is not None:
                record_provision(release, ["record_code"], c.serial)
    rows = [c.as_json() | ({} if show_codes else {"resident_code": None,
                                                  "redacted": ["resident_code"]})
            | ({"due": due[c.serial]} if expiring_days is not None else {})
            for c in cards]
    emit(as_json, rows, lambda: "\n".join(
        f"{c.serial}  {c.status:9} {c.status_reason or '':10} expiry {c.expiry}  code "
        f"{c.resident_code if show_codes else REDACTED}" + "".join(
            f"\n    due: {d['what']} {d['not_after']}{' (expired)' if d['expired'] else ''}"
            for d in due.get(c.serial, [])) for c in cards) or "no cards")


@click.command("show")
@click.argument("serial")
@json_option
def card_show(serial: str, as_json: bool) -> None:
    """One card: its registry row, its life-cycle events, its resident's codes (with
    read-code, recorded as a provision to the station)."""
    st = station()
    registry = st.registry
    card = registry.get(serial)
    if card is None:
        raise RegistryError(f"card {serial} is not in the registry")
    payload = card.as_json() | {"events": [e.as_json() for e in registry.events(serial)]}
    if st.reveal("record_code") and st.reveal("code_history"):
        if card.resident_id is not None:
            record_provision(station_release("REGISTRY-ADMIN"), ["record_code", "code_history"],
                             serial)
        payload["record_codes"] = registry.code_history(card.resident_id) if card.resident_id else []
    else:
        payload |= {"resident_code": None, "record_codes": None,
                    "redacted": ["resident_code", "record_codes"]}
    emit(as_json, payload, lambda: "\n".join(
        [f"{card.serial}: {card.status} {card.status_reason or ''}".rstrip()]
        + [f"  {e.at} {e.from_status or '-'} -> {e.to_status} {e.reason or ''}".rstrip()
           for e in registry.events(serial)]))


def _transition(serial: str, to: str, reason: str | None, as_json: bool) -> None:
    before = station().registry.set_status(serial, to, reason)
    emit(as_json, {"card_serial": serial, "from": before, "to": to, "reason": reason},
         f"card {serial}: {before} -> {to}" + (f" ({reason})" if reason else ""))


@click.command("suspend")
@click.argument("serial")
@click.option("--reason", required=True, help="Why (recorded with the event).")
@json_option
def card_suspend(serial: str, reason: str, as_json: bool) -> None:
    """Suspend an active card: it stops verifying until resumed."""
    _transition(serial, "suspended", reason, as_json)


@click.command("resume")
@click.argument("serial")
@click.option("--reason", default=None)
@json_option
def card_resume(serial: str, reason: str | None, as_json: bool) -> None:
    """Resume a suspended card."""
    _transition(serial, "active", reason, as_json)


@click.command("revoke")
@click.argument("serial")
@click.option("--reason", required=True, type=click.Choice(REVOKE_REASONS))
@json_option
def card_revoke(serial: str, reason: str, as_json: bool) -> None:
    """Revoke a card for good."""
    _transition(serial, "revoked", reason, as_json)


@click.command("reissue")
@click.argument("old_serial")
@click.argument("request_file", type=client_path())
@card_options
@pin_file_option
@json_option
def card_reissue(old_serial: str, request_file: Path, reader: str | None, timeout: float,
                 pin_file: Path | None, as_json: bool) -> None:
    """A new card for the same resident (same record code); the old one is revoked as
    superseded when the new one is active."""
    from ..issuance.request import load_request
    from ..issuance.resident_card import issue_resident_card
    from ..pki.issued import crl_base_url
    from ..station.pins import ISSUANCE_PINS, ResidentCardPins

    request = load_request(request_file, read_client_file)
    pins = ResidentCardPins.from_collected(collect_cli_pins(ISSUANCE_PINS, pin_file, confirm=True))
    st = station()
    with presented(reader, timeout, kind="blank") as (name, channel):
        issued = issue_resident_card(channel, st.hsm, st.registry, request, pins,
                                     reissue_of=old_serial,
                                     crl_base_url=crl_base_url(st.home.settings()))
    emit(as_json, issued.as_json() | {"supersedes": old_serial, "reader": name},
         f"issued card {issued.card_serial}; card {old_serial} revoked (superseded); security "
         f"code for the card face: {issued.security_code.reveal()} (shown only now)")


@click.command("wipe")
@card_options
@json_option
def card_wipe(reader: str | None, timeout: float, as_json: bool) -> None:
    """A failed or returned card back to blank, over SCP03 with its transport keys."""
    from ..issuance.recovery import wipe_card
    from ..resident.record_code import card_serial

    st = station()
    with presented(reader, timeout) as (_name, channel):
        serial = card_serial(channel)
        record = st.registry.get(serial)
        if record is not None and not (record.status == "failed" or (
                record.status == "revoked" and record.status_reason == "returned")):
            raise click.UsageError(f"card {serial} is {record.status}: only a failed or a "
                                   "returned (revoked) card is wiped")
        wipe_card(channel, st.hsm, serial)
        st.registry.forget_failed(serial)
    emit(as_json, {"card_serial": serial, "wiped": True}, f"card {serial} is blank again")


COMMANDS = (card_list, card_show, card_suspend, card_resume, card_revoke, card_reissue, card_wipe)
