"""``juki verify``: is the presented card genuine?"""

from __future__ import annotations

import click

from .common import (
    ExitCode,
    card_options,
    emit,
    json_option,
    presented,
    provision_release,
    purpose_option,
    recipient_option,
    record_provision,
    station,
)


@click.command()
@recipient_option
@purpose_option
@card_options
@json_option
def verify(recipient: str | None, purpose: str | None, reader: str | None, timeout: float,
           as_json: bool) -> ExitCode:
    """Is the presented card genuine? Challenge-response against the token. With
    --recipient/--purpose the verdict is a provision, recorded before it is shown."""
    from ..resident.verifier import Verifier

    release = provision_release(recipient, purpose, required=False)
    st = station()
    st.registry.expire_due()
    verifier = Verifier.from_token(st.registry, st.hsm)
    with presented(reader, timeout) as (name, channel):
        verdict = verifier.verify(channel)
    entry = None
    if release is not None and verdict.card_serial is not None:
        entry = record_provision(release, ["verification"], verdict.card_serial)

    def text() -> str:
        head = "GENUINE" if verdict.genuine else "NOT GENUINE"
        lines = [f"{head}: card {verdict.card_serial or '?'} in {name}"]
        lines += [f"  [{'ok' if c.ok else 'FAIL'}] {c.name}: {c.detail}" for c in verdict.checks]
        return "\n".join(lines)

    emit(as_json, verdict.as_json() | ({"provision_entry": entry} if entry is not None else {}),
         text)
    return ExitCode.OK if verdict.genuine else ExitCode.CHECK_FAILED
