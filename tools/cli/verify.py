"""``juki verify``: is the presented card genuine?"""

from __future__ import annotations

from pathlib import Path

import click

from .common import (
    ExitCode,
    card_options,
    client_path,
    collect_credential,
    credential_option,
    emit,
    json_option,
    pin_file_option,
    presented,
    provision_release,
    purpose_option,
    read_client_file,
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
@click.option("--ca", "ca_files", type=client_path(), multiple=True,
              help="With --offline, as a relying party (no token, no registry): a CA "
                   "certificate (PEM or DER) the card's JPKI auth certificate must chain to. "
                   "Repeatable.")
@click.option("--crl", "crl_files", type=client_path(), multiple=True,
              help="With --offline and --ca: a CRL (PEM or DER) of that CA. Repeatable.")
@card_options
@pin_file_option
@json_option
def verify(recipient: str | None, purpose: str | None, credential: str, offline: bool,
           ca_files: tuple[Path, ...], crl_files: tuple[Path, ...], reader: str | None,
           timeout: float, pin_file: Path | None, as_json: bool) -> ExitCode:
    """Is the presented card genuine? From the card alone: its card-info CV certificate
    (EF 0004) chains to a trust anchor (`juki trust list`), EF 0007 verifies under it
    after the credential of --with, and the card signs a fresh token challenge with the
    key EF 0007 certifies (80 2A 00 00). For this station's cards also the registry:
    status, serial/municipality/expiry on record, our certificate (INTERNAL AUTHENTICATE).
    With --recipient/--purpose the verdict is a provision, recorded before it is shown.
    With --offline --ca FILE --crl FILE, a relying party's check: no token, no registry;
    the JPKI auth certificate (EF 000A) chains to a given CA and is not on its CRL."""
    relying_party = _relying_party(offline, ca_files, crl_files, recipient, purpose)
    release = provision_release(recipient, purpose, required=False)
    secret = collect_credential(credential, pin_file)
    verifier = _verifier(relying_party is not None)
    with presented(reader, timeout) as (name, channel):
        verdict = verifier.verify(channel, secret, offline=offline, relying_party=relying_party)
    entry = None
    if release is not None and verdict.card_serial is not None:
        entry = record_provision(release, ["verification"], verdict.card_serial)
    note = _open_operation(verdict.card_serial) if relying_party is None else None

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
        if note is not None:
            lines.append(f"  [FAIL] open operation: {note['note']}")
        return "\n".join(lines)

    emit(as_json, verdict.as_json() | ({"provision_entry": entry} if entry is not None else {})
         | ({"open_operation": note} if note is not None else {}), text)
    # an unfinished operation: the card's files may disagree with the registry (and with
    # each other) until `juki issue recover` settles it, so the card does not pass
    return ExitCode.OK if verdict.genuine and note is None else ExitCode.CHECK_FAILED


def _open_operation(serial: str | None) -> dict[str, object] | None:
    """An unfinished counter operation on the card (its card and registry may differ)."""
    if serial is None:
        return None
    operation = station().registry.open_operation_of(serial)
    if operation is None:
        return None
    status = "interrupted" if operation.status == "interrupted" else "in progress"
    return {"id": operation.id, "kind": operation.kind, "status": operation.status,
            "note": f"operation {operation.id} ({operation.kind}) {status}: run juki issue "
                    f"recover"}


def _verifier(relying_party: bool):  # type: ignore[no-untyped-def]
    """The station's verifier; a relying party's opens neither the token nor the registry."""
    from ..resident.verifier import Verifier

    st = station()
    if relying_party:
        return Verifier.for_relying_party(st.checked_settings())
    st.registry.expire_due()
    from ..counter.moves import run_deadlines

    run_deadlines(st.registry, st.home.settings())  # a card whose continued use lapsed
    return Verifier.for_station(st.registry, st.hsm, st.home.settings())


def _relying_party(offline: bool, ca_files: tuple[Path, ...], crl_files: tuple[Path, ...],
                   recipient: str | None, purpose: str | None):  # type: ignore[no-untyped-def]
    """The relying party of --ca/--crl (files read with the caller's permissions), or
    None without them; checked before any card I/O."""
    from ..resident.relying_party import RelyingParty, RelyingPartyInputError

    if not ca_files and not crl_files:
        return None
    if not offline:
        raise click.UsageError("--ca/--crl are the relying party's check: give --offline too")
    if recipient is not None or purpose is not None:
        raise click.UsageError("--recipient/--purpose record a provision in the station's log: "
                               "not with --ca/--crl (a relying party has no station log)")
    def read(option: str, path: Path) -> tuple[str, bytes]:
        try:
            return str(path), read_client_file(path)
        except OSError as exc:
            raise click.UsageError(f"--{option} {path}: {exc.strerror or exc}") from None

    try:
        return RelyingParty.load([read("ca", p) for p in ca_files],
                                 [read("crl", p) for p in crl_files])
    except RelyingPartyInputError as exc:
        raise click.UsageError(str(exc)) from None
