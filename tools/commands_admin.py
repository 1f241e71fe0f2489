"""Registry administration: ``juki card list/show/suspend/resume/revoke/reissue/wipe``,
``juki resident change-code``, ``juki db upgrade``."""

from __future__ import annotations

from pathlib import Path

import click

from .cli import emit, json_option, reader_option, station, timeout_option
from .registry import REVOKE_REASONS, RegistryError


def _card_group(cli: click.Group) -> click.Group:
    group = cli.commands["card"]
    assert isinstance(group, click.Group)
    return group


@click.command("list")
@click.option("--status", default=None, help="Only cards in this state.")
@json_option
def card_list(status: str | None, as_json: bool) -> None:
    """Cards in the registry (expired ones are marked first)."""
    registry = station().registry
    registry.expire_due()
    cards = registry.list(status)
    emit(as_json, [c.as_json() for c in cards], lambda: "\n".join(
        f"{c.serial}  {c.status:9} {c.status_reason or '':10} expiry {c.expiry}  code {c.resident_code}"
        for c in cards) or "no cards")


@click.command("show")
@click.argument("serial")
@json_option
def card_show(serial: str, as_json: bool) -> None:
    """One card: its registry row, its life-cycle events, its resident's codes."""
    registry = station().registry
    card = registry.get(serial)
    if card is None:
        raise RegistryError(f"card {serial} is not in the registry")
    payload = card.as_json() | {
        "events": [e.as_json() for e in registry.events(serial)],
        "record_codes": registry.code_history(card.resident_id) if card.resident_id else [],
    }
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
@click.argument("request_file", type=click.Path(path_type=Path))
@reader_option
@timeout_option
@click.option("--pin-file", type=click.Path(path_type=Path), default=None)
@json_option
def card_reissue(old_serial: str, request_file: Path, reader: str | None, timeout: float,
                 pin_file: Path | None, as_json: bool) -> None:
    """A new card for the same resident (same record code); the old one is revoked as
    superseded when the new one is active."""
    from .cards import choose_reader, open_card
    from .commands_cards import collect_cli_pins
    from .issuance import issue_resident_card
    from .pins import ISSUANCE_PINS, ResidentCardPins
    from .requests import load_request

    request = load_request(request_file)
    pins = ResidentCardPins.from_collected(collect_cli_pins(ISSUANCE_PINS, pin_file, confirm=True))
    st = station()
    name = choose_reader(reader, timeout, blank=True)
    with open_card(name) as channel:
        issued = issue_resident_card(channel, st.hsm, st.registry, request, pins,
                                     reissue_of=old_serial)
    emit(as_json, issued.as_json() | {"supersedes": old_serial, "reader": name},
         f"issued card {issued.card_serial}; card {old_serial} revoked (superseded)")


@click.command("wipe")
@reader_option
@timeout_option
@json_option
def card_wipe(reader: str | None, timeout: float, as_json: bool) -> None:
    """A failed or returned card back to blank, over SCP03 with its transport keys."""
    from .cards import choose_reader, open_card
    from .recovery import wipe_card
    from .registry_ap import card_serial

    st = station()
    name = choose_reader(reader, timeout)
    with open_card(name) as channel:
        serial = card_serial(channel)
        record = st.registry.get(serial)
        if record is not None and not (record.status == "failed" or (
                record.status == "revoked" and record.status_reason == "returned")):
            raise click.UsageError(f"card {serial} is {record.status}: only a failed or a "
                                   "returned (revoked) card is wiped")
        wipe_card(channel, st.hsm, serial)
        st.registry.forget_failed(serial)
    emit(as_json, {"card_serial": serial, "wiped": True}, f"card {serial} is blank again")


@click.group()
def resident() -> None:
    """Residents and their record codes."""


@resident.command("change-code")
@click.option("--code", "current", required=True, help="The resident's current record code.")
@click.option("--reason", required=True, help="The reason recorded on the card and registry.")
@reader_option
@timeout_option
@json_option
def resident_change_code(current: str, reason: str, reader: str | None, timeout: float,
                         as_json: bool) -> None:
    """Give the resident a new random record code, on their card and in the registry."""
    from .cards import choose_reader, open_card
    from .code_change import change_record_code

    st = station()
    name = choose_reader(reader, timeout)
    with open_card(name) as channel:
        result = change_record_code(channel, st.hsm, st.registry, current, reason)
    emit(as_json, result.as_json(),
         f"card {result.card_serial}: record code {result.old_code} -> {result.new_code}")


@click.group()
def db() -> None:
    """The registry database."""


@db.command("upgrade")
@json_option
def db_upgrade(as_json: bool) -> None:
    """Apply pending schema migrations (also done automatically on first use)."""
    registry = station().registry
    emit(as_json, {"schema_version": registry.schema_version(), "backend": registry.dialect},
         f"registry ({registry.dialect}): schema version {registry.schema_version()}")


def register(cli: click.Group) -> None:
    card = _card_group(cli)
    for command in (card_list, card_show, card_suspend, card_resume, card_revoke, card_reissue,
                    card_wipe):
        card.add_command(command)
    cli.add_command(resident)
    cli.add_command(db)
