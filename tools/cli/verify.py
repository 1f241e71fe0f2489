"""``juki verify``: is the presented card genuine?"""

from __future__ import annotations

from pathlib import Path

import click

from .common import (
    ExitCode,
    card_options,
    collect_credential,
    credential_option,
    emit,
    json_option,
    pin_file_option,
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
@credential_option
@click.option("--offline", is_flag=True,
              help="The card-alone proof only: skip the registry checks (the JSON says so).")
@card_options
@pin_file_option
@json_option
def verify(recipient: str | None, purpose: str | None, credential: str, offline: bool,
           reader: str | None, timeout: float, pin_file: Path | None, as_json: bool) -> ExitCode:
    """Is the presented card genuine? From the card alone: its card-info CV certificate
    (EF 0004) chains to a trust anchor (`juki trust list`), EF 0007 verifies under it
    after the credential of --with, and the card signs a fresh token challenge with the
    key EF 0007 certifies (80 2A 00 00). For this station's cards also the registry:
    status, serial/municipality/expiry on record, our certificate (INTERNAL AUTHENTICATE).
    With --recipient/--purpose the verdict is a provision, recorded before it is shown."""
    from ..resident.verifier import Verifier

    release = provision_release(recipient, purpose, required=False)
    secret = collect_credential(credential, pin_file)
    st = station()
    st.registry.expire_due()
    verifier = Verifier.for_station(st.registry, st.hsm, st.home.settings())
    with presented(reader, timeout) as (name, channel):
        verdict = verifier.verify(channel, secret, offline=offline)
    entry = None
    if release is not None and verdict.card_serial is not None:
        entry = record_provision(release, ["verification"], verdict.card_serial)

    def text() -> str:
        head = "GENUINE" if verdict.genuine else "NOT GENUINE"
        lines = [f"{head}: card {verdict.card_serial or '?'} in {name}"]
        if verdict.anchor is not None:
            lines.append(f"  anchor: {verdict.anchor['key_id']} ({verdict.anchor['hierarchy']}); "
                         f"chain: {' -> '.join(verdict.chain)}")
        lines += [f"  [{'ok' if c.ok else 'FAIL'}] {c.name}: {c.detail}" for c in verdict.checks]
        lines += [f"  [skipped] {s['name']}: {s['reason']}" for s in verdict.skipped]
        if verdict.card_expired is not None:
            lines.append(f"  card: {'EXPIRED' if verdict.card_expired else 'within its expiry'}")
        lines += [f"  certificate {c['kind']}: {c['serial_number']} until {c['not_after']}, "
                  f"{c['status']}{', EXPIRED' if c['expired'] else ''}"
                  for c in verdict.certificates]
        return "\n".join(lines)

    emit(as_json, verdict.as_json() | ({"provision_entry": entry} if entry is not None else {}),
         text)
    return ExitCode.OK if verdict.genuine else ExitCode.CHECK_FAILED
