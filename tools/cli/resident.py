"""``juki resident``: residents and their record codes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from .common import (
    card_options,
    collect_credential,
    emit,
    json_option,
    pin_file_option,
    presented,
    station,
)


@click.group()
def resident() -> None:
    """Residents and their record codes."""


@resident.command("change-code")
@click.option("--code", "current", required=True, help="The resident's current record code.")
@click.option("--reason", required=True, help="The reason recorded on the card and registry.")
@card_options
@json_option
def resident_change_code(current: str, reason: str, reader: str | None, timeout: float,
                         as_json: bool) -> None:
    """Give the resident a new random record code, on their card and in the registry."""
    from ..resident.code_change import change_record_code

    st = station()
    with presented(reader, timeout) as (_name, channel):
        result = change_record_code(channel, st.hsm, st.registry, current, reason)
    emit(as_json, result.as_json(),
         f"card {result.card_serial}: record code {result.old_code} -> {result.new_code}")


def _date(value: dt.datetime) -> dt.date:
    return value.date()


date_type = click.DateTime(formats=["%Y-%m-%d"])
no_signature_option = click.option(
    "--no-signature-certificate", "no_signature", is_flag=True,
    help="Revoke the JPKI signature certificate (it carries the old 4 information) without "
         "issuing a new one onto the card.")
counter_pin_option = click.option(
    "--with", "credential", type=click.Choice(["pin"]), default="pin", show_default=True,
    help="The resident's card-info PIN (pin file name card_info), read like every PIN, "
         "never from argv.")


def _settings() -> dict:  # type: ignore[type-arg]
    return station().home.settings()


@resident.command("move-out")
@click.option("--code", required=True, help="The resident's record code.")
@click.option("--to", "to", required=True, help="The municipality code moved to (6 digits).")
@click.option("--date", "date", type=date_type, required=True, help="Planned date YYYY-MM-DD.")
@click.option("--reason", required=True, help="The reason (付随情報).")
@json_option
def resident_move_out(code: str, to: str, date: dt.datetime, reason: str, as_json: bool) -> None:
    """Record a planned move with the card (特例転出); the card stays valid."""
    from ..counter.moves import move_out

    move = move_out(station().registry, _settings(), code, to, _date(date), reason)
    emit(as_json, move.as_json(), f"move {move.id}: planned {move.planned_date} from "
         f"{move.from_municipality} to {move.to_municipality} (card {move.card_serial} stays valid)")


@resident.command("moves")
@click.option("--code", required=True, help="The resident's record code.")
@json_option
def resident_moves(code: str, as_json: bool) -> None:
    """The resident's moves, oldest first (deadlines applied first)."""
    from ..counter.moves import resident_of, run_deadlines

    registry = station().registry
    run_deadlines(registry, _settings())
    moves = registry.moves_of(resident_of(registry, code))
    emit(as_json, [m.as_json() for m in moves], lambda: "\n".join(
        f"move {m.id}: {m.status:9} {m.from_municipality} -> {m.to_municipality} planned "
        f"{m.planned_date}" + (f", moved in {m.moved_in_date}" if m.moved_in_date else "")
        + (f", card due by {m.continued_use_deadline}" if m.status == "moved-in" else "")
        for m in moves) or "no moves")


def _changed_text(changed) -> str:  # type: ignore[no-untyped-def]
    new = changed.signature_certificate
    return (f"card {changed.card_serial}: {changed.kind} done (operation {changed.operation}); "
            f"municipality {changed.municipality['from']} -> {changed.municipality['to']}; "
            f"signature certificate revoked: {', '.join(changed.revoked) or 'none'}; new: "
            f"{new or 'none'}")


@resident.command("move-in")
@click.option("--address", required=True, help="The new address.")
@click.option("--municipality", required=True, help="This municipality's code (6 digits).")
@click.option("--date", "date", type=date_type, required=True, help="Moved-in date YYYY-MM-DD.")
@click.option("--card-later", is_flag=True,
              help="Without the card: notify only (give --code); `resident continue-card` "
                   "rewrites the card before the continued-use deadline.")
@click.option("--code", default=None, help="With --card-later: the resident's record code.")
@counter_pin_option
@no_signature_option
@card_options
@pin_file_option
@json_option
def resident_move_in(address: str, municipality: str, date: dt.datetime, card_later: bool,
                     code: str | None, credential: str, no_signature: bool, reader: str | None,
                     timeout: float, pin_file: Path | None, as_json: bool) -> None:
    """Move in with the card (特例転入): the card and its PIN prove it; the planned move is
    found; address and municipality are rewritten on the card over SCP03, the integrity
    record re-signed in the token, the signature certificate revoked (and a new one
    issued), the registry updated, in one journalled operation."""
    from ..counter import moves

    if card_later:
        if code is None:
            raise click.UsageError("--card-later needs --code (the card is not presented)")
        move = moves.card_later(station().registry, _settings(), code, address, municipality,
                                _date(date))
        emit(as_json, move.as_json(), f"move {move.id}: moved in {move.moved_in_date}; the "
             f"card's continued use is due by {move.continued_use_deadline}")
        return
    if code is not None:
        raise click.UsageError("--code goes with --card-later; with the card, the card says "
                               "whose move it is")
    _name, pin = collect_credential(credential, pin_file)
    st = station()
    with presented(reader, timeout) as (_reader, channel):
        changed = moves.move_in(channel, st.hsm, st.registry, st.home.settings(), pin, address,
                                municipality, _date(date), not no_signature)
    emit(as_json, changed.as_json(), _changed_text(changed))


@resident.command("continue-card")
@counter_pin_option
@no_signature_option
@card_options
@pin_file_option
@json_option
def resident_continue_card(credential: str, no_signature: bool, reader: str | None,
                           timeout: float, pin_file: Path | None, as_json: bool) -> None:
    """The card of a move notified with --card-later: rewritten, the move completed."""
    from ..counter.moves import continue_card

    _name, pin = collect_credential(credential, pin_file)
    st = station()
    with presented(reader, timeout) as (_reader, channel):
        changed = continue_card(channel, st.hsm, st.registry, st.home.settings(), pin,
                                not no_signature)
    emit(as_json, changed.as_json(), _changed_text(changed))


@resident.command("change")
@click.option("--field", "field_name", required=True,
              type=click.Choice(["name", "address", "name-kana", "sex", "birth-date"]),
              help="The field changed (a birth date needs a new card).")
@click.option("--value", required=True, help="The new value.")
@click.option("--reason", required=True, help="The reason (付随情報).")
@click.option("--date", "date", type=date_type, required=True, help="Date of the change.")
@counter_pin_option
@no_signature_option
@card_options
@pin_file_option
@json_option
def resident_change(field_name: str, value: str, reason: str, date: dt.datetime,
                    credential: str, no_signature: bool, reader: str | None, timeout: float,
                    pin_file: Path | None, as_json: bool) -> None:
    """Change one of the 4 information (marriage, a correction) on the card and in the
    registry, in one journalled operation."""
    from ..counter.identity_change import change_identity

    _name, pin = collect_credential(credential, pin_file)
    st = station()
    with presented(reader, timeout) as (_reader, channel):
        changed = change_identity(channel, st.hsm, st.registry, st.home.settings(), pin,
                                  field_name, value, reason, _date(date), not no_signature)
    emit(as_json, changed.as_json(), _changed_text(changed))
