"""``juki resident``: residents and their record codes."""

from __future__ import annotations

import click

from .common import card_options, emit, json_option, presented, station


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
