"""`juki audit …`: recipients, checkpoints, verification, proofs and disclosure."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click

from .common import (
    ExitCode,
    card_options,
    client_path,
    collect_cli_pins,
    emit,
    json_option,
    pin_file_option,
    presented,
    station,
    station_release,
    terminal,
)


@click.group()
def audit() -> None:
    """The provision record: who received whose identity information, for what."""


def _recipients_file() -> str | None:
    return station().home.settings().get("audit", {}).get("recipients_file")


@audit.command("recipients")
@click.option("--load", "load_file", type=client_path(), default=None,
              help="Add the recipients and purposes of this TOML file.")
@json_option
def audit_recipients(load_file: Path | None, as_json: bool) -> None:
    """Recipient agencies and the purposes (with codes) each may use identity data for."""
    from ..audit import recipients
    from ..audit.provision import load_recipients

    st = station()
    registry = st.registry
    if load_file is not None and st.reveal("recipient_table"):  # else denied and recorded
        load_recipients(registry, st.hsm, station_release("RECIPIENT-TABLE"), load_file)
    recipients.ensure_loaded(registry, Path(f) if (f := _recipients_file()) else None)
    found = recipients.listed(registry)
    emit(as_json, [r.as_json() for r in found], lambda: "\n".join(
        f"{r.recipient_id} {r.name}\n" + "\n".join(f"  {p.code}  {p.description}"
                                                  for p in r.purposes) for r in found))


def _peers(st):  # type: ignore[no-untyped-def]
    """This station's id and the station CA certificates it trusts (other stations'
    entries of a shared log are proven by their certified signatures)."""
    from ..audit.peers import peers_for

    return peers_for(st.home, st.hsm)


@audit.command("checkpoint")
@json_option
def audit_checkpoint(as_json: bool) -> None:
    """Sign (size, root, time) of the log with the token's audit key."""
    from ..audit.anchors import checkpoints_path
    from ..audit.checkpoints import make_checkpoint

    st = station()
    checkpoint = make_checkpoint(st.registry, st.hsm, checkpoints_path(st.home.root),
                                 _peers(st))
    emit(as_json, checkpoint.as_json(),
         f"checkpoint: {checkpoint.size} entries, root {checkpoint.root.hex()}, {checkpoint.at}")


@audit.command("verify")
@json_option
def audit_verify(as_json: bool) -> ExitCode:
    """Recompute the whole log: every entry's leaf, index and columns, every
    checkpoint's signature and root, against the token head and the checkpoint file;
    entries under the latest signed checkpoint are proven by its root, later ones by
    their own or their batch's MAC (on two cores). Exit 1 (with the first bad index, or
    what is missing) if anything was changed."""
    from ..audit.anchors import checkpoints_path
    from ..audit.verify import verify_log

    st = station()
    verdict = verify_log(st.registry.connection(), st.hsm, checkpoints_path(st.home.root),
                         _peers(st))
    emit(as_json, verdict.as_json(),
         f"provision log intact: {verdict.size} entries, {verdict.checkpoints} checkpoints"
         if verdict.ok else
         f"provision log NOT intact: first bad index {verdict.first_bad_index}: {verdict.problem}")
    return ExitCode.OK if verdict.ok else ExitCode.CHECK_FAILED


@audit.command("proof")
@click.option("--index", type=int, required=True, help="Entry index.")
@json_option
def audit_proof(index: int, as_json: bool) -> ExitCode:
    """Inclusion proof of one entry against the latest checkpoint (verified)."""
    from ..audit import log, merkle
    from ..audit.checkpoints import require_signed, station_checkpoints
    from ..errors import RequestError

    st = station()
    db = st.registry.connection()
    own = station_checkpoints(db, st.hsm, _peers(st))
    checkpoint, entry = (own[-1] if own else None), log.entry_at(db, index)
    if checkpoint is None or entry is None or index >= checkpoint.size:
        raise RequestError("index", f"entry {index} is not covered by a checkpoint")
    require_signed(db, st.hsm, checkpoint)
    proof = merkle.inclusion_proof(index, checkpoint.size, log.stored_subtree(db))
    ok = merkle.verify_inclusion(index, checkpoint.size, entry.leaf, proof, checkpoint.root)
    emit(as_json, {"index": index, "size": checkpoint.size, "root": checkpoint.root.hex(),
                   "leaf": entry.leaf.hex(), "proof": [p.hex() for p in proof], "verified": ok},
         f"entry {index} in the tree of {checkpoint.size}: {'verified' if ok else 'FAILED'} "
         f"({len(proof)} hashes)")
    return ExitCode.OK if ok else ExitCode.CHECK_FAILED


@audit.command("consistency")
@click.option("--old", "old_size", type=int, required=True, help="Size of the older checkpoint.")
@click.option("--new", "new_size", type=int, default=None, help="Newer checkpoint (latest).")
@json_option
def audit_consistency(old_size: int, new_size: int | None, as_json: bool) -> ExitCode:
    """Consistency proof between two signed checkpoints (the older is a prefix)."""
    from ..audit import log, merkle
    from ..audit.checkpoints import require_signed, station_checkpoints
    from ..errors import RequestError

    st = station()
    db = st.registry.connection()
    by_size = {c.size: c for c in station_checkpoints(db, st.hsm, _peers(st))}
    new_size = new_size if new_size is not None else max(by_size, default=0)
    if old_size not in by_size or new_size not in by_size or not 0 < old_size <= new_size:
        raise RequestError("old/new", "both must be sizes of signed checkpoints, old <= new")
    require_signed(db, st.hsm, by_size[old_size], by_size[new_size])
    proof = merkle.consistency_proof(old_size, new_size, log.stored_subtree(db))
    ok = merkle.verify_consistency(old_size, new_size, by_size[old_size].root,
                                   by_size[new_size].root, proof)
    emit(as_json, {"old": old_size, "new": new_size, "proof": [p.hex() for p in proof],
                   "verified": ok},
         f"checkpoint {old_size} -> {new_size}: {'consistent' if ok else 'NOT consistent'}")
    return ExitCode.OK if ok else ExitCode.CHECK_FAILED


@audit.command("disclose")
@click.option("--code", default=None, help="Any record code of the resident (old ones too).")
@click.option("--card", "card_serial", default=None, help="Or the serial of their card.")
@click.option("--format", "output", type=click.Choice(["text", "json", "html"]), default="text",
              show_default=True)
@click.option("--out", type=client_path(), default=None, help="Write to a file.")
@json_option
def audit_disclose(code: str | None, card_serial: str | None, output: str, out: Path | None,
                   as_json: bool) -> None:
    """The provision status report for one resident, with inclusion proofs."""
    from ..audit.anchors import checkpoints_path
    from ..audit.disclosure import disclose, resident_for, self_release
    from ..audit.provision import release_for
    from ..audit.report import as_html, as_text, local_time

    st = station()
    resident = resident_for(st.registry, code, card_serial)
    release = self_release(release_for(st.home, st.actor, "SELF", "DISCLOSURE"))
    report, _ = disclose(st.registry, st.hsm, release, resident, ["provision_record"],
                         show_codes=st.reveal("record_code"),
                         checkpoints_file=checkpoints_path(st.home.root), peers=_peers(st))
    output = "json" if as_json else output
    if output == "json":
        text = json.dumps(report.as_json(), ensure_ascii=False, indent=2)
    elif output == "html":
        from zoneinfo import ZoneInfo

        issued = dt.datetime.now(ZoneInfo(release.zone)).isoformat(timespec="minutes")
        text = as_html(report, local_time(issued), release.station)
    else:
        text = as_text(report)
    if out is not None:
        terminal().write_file(out, text.encode("utf-8"))
        click.echo(f"wrote {out} ({len(report.entries)} entries)")
    else:
        click.echo(text)


@audit.command("events")
@click.option("--operator", "operator_id", default=None, help="Only what this operator did.")
@click.option("--card", "card_serial", default=None, help="Only events of this card.")
@click.option("--since", default=None,
              help="Only events from this ISO date or date-time on (station time if no offset).")
@click.option("--event", "event_name", default=None,
              help="Only this event (card-suspended, operator-enrolled, key-created …).")
@click.option("--proof", is_flag=True,
              help="Each with its inclusion proof against a freshly signed checkpoint.")
@json_option
def audit_events(operator_id: str | None, card_serial: str | None, since: str | None,
                 event_name: str | None, proof: bool, as_json: bool) -> ExitCode:
    """操作履歴: who did what (every change to a card, resident, operator, key or the
    recipient table), oldest first. Exit 1 if a proof or the checkpoint fails."""
    from ..audit import event_list, log
    from ..audit.anchors import checkpoints_path
    from ..audit.checkpoints import make_checkpoint, verifier
    from ..audit.provision import release_for

    st = station()
    zone = release_for(st.home, st.actor, "", "").zone
    query = event_list.EventQuery(operator_id, card_serial,
                                  event_list.parse_since(since, zone) if since else None,
                                  event_name)
    db = st.registry.connection()
    if proof:
        checkpoint = make_checkpoint(st.registry, st.hsm, checkpoints_path(st.home.root),
                                     _peers(st))
        size, root, subtree = checkpoint.size, checkpoint.root, log.stored_subtree(db)
        signed = verifier(db, st.hsm).ok(checkpoint)
        head: dict[str, object] | None = checkpoint.as_json() | {"signature_ok": signed}
    else:
        size, root, subtree, signed, head = log.size(db), None, None, True, None
    ok = _stream_events(as_json, head,
                        (event_list.listed(e, size if proof else None, root, subtree)
                         for e in event_list.event_entries(db, query, below=size)))
    return ExitCode.OK if ok and signed else ExitCode.CHECK_FAILED


def _stream_events(as_json: bool, head: dict[str, object] | None, events) -> bool:  # type: ignore[no-untyped-def]
    """Print each event as it is read (JSON ``{"checkpoint": …, "events": [...]}``, or a
    text block each); whether every proof verified."""
    ok, count = True, 0
    if as_json:
        click.echo('{"checkpoint": ' + json.dumps(head, ensure_ascii=False) + ', "events": [',
                   nl=False)
    elif head is not None:
        click.echo(f"checkpoint: {head['size']} entries, root {head['root']}, {head['at']}, "
                   f"signature {'valid' if head['signature_ok'] else 'INVALID'}")
    for count, event in enumerate(events, start=1):
        ok = ok and event.proof_verified is not False
        if as_json:
            body = json.dumps(event.as_json(), ensure_ascii=False, indent=2)
            click.echo(("\n" if count == 1 else ",\n") + body, nl=False)
        else:
            click.echo(event.text())
    if as_json:
        click.echo("\n]}" if count else "]}")
    elif not count:
        click.echo("no events")
    return ok


def _requester(st, code: str, representative: str | None, basis: str | None,  # type: ignore[no-untyped-def]
               reader: str | None, timeout: float, pin_file: Path | None) -> tuple[int, dict]:
    """(resident, who asked): the resident in person, proven by their own card's JPKI
    user-authentication signature over a fresh token challenge, or a legal
    representative (read-identity) named with the documentary basis."""
    from cardlib.errors import InvalidPinError, PinBlockedError

    from ..audit.disclosure import resident_for
    from ..errors import PermissionDeniedError, RequestError

    if (representative is None) != (basis is None):
        raise RequestError("representative", "give both --representative and --basis")
    if representative is not None and basis is not None:
        st.reveal("representative_request")  # read-identity, else denied and recorded
        for name, value in (("representative", representative), ("basis", basis)):
            if not value.strip() or len(value) > 200 or not value.isprintable():
                raise RequestError(name, f"--{name} must be 1-200 printable characters")
        return resident_for(st.registry, code, None), {
            "kind": "representative", "name": representative.strip(), "basis": basis.strip()}
    resident = resident_for(st.registry, code, None)
    try:
        serial = _prove_holder(st, reader, timeout, pin_file)
        card = st.registry.get(serial)
        if card is None or card.status != "active" or card.resident_id != resident:
            raise PermissionDeniedError(f"card {serial} is not an active card of the resident "
                                        f"with record code {code}")
    except (PermissionDeniedError, InvalidPinError, PinBlockedError) as exc:
        st.registry.record_denial(st.home.station_id(), st.actor, "audit self", None,
                                  f"holder proof refused: {exc}")
        raise
    return resident, {"kind": "resident", "card_serial": serial,
                      "proof": "JPKI user-authentication signature over a token challenge"}


def _prove_holder(st, reader: str | None, timeout: float, pin_file: Path | None) -> str:  # type: ignore[no-untyped-def]
    from cardlib.apps.jpki import JpkiApSession
    from hsm.ca import role_certificates
    from hsm.roles import KeyRole
    from hsm.verify import ChallengeBook, PublicKeyCache

    from ..resident.jpki import prove_holder
    from ..station.pins import JPKI_AUTH_PIN

    pin = collect_cli_pins([JPKI_AUTH_PIN], pin_file, confirm=False)[JPKI_AUTH_PIN.name]
    cas = role_certificates(st.hsm, KeyRole.RESIDENT_ISSUING_CA)
    with presented(reader, timeout) as (_name, channel):
        session = JpkiApSession(channel)
        session.select()
        return prove_holder(session, pin, ChallengeBook(st.hsm), PublicKeyCache(st.hsm), cas,
                            purpose="audit self", station=st.home.station_id())


@audit.command("self")
@click.option("--code", required=True, help="Any record code of the resident.")
@click.option("--representative", default=None,
              help="A legal representative (法定代理人) asks instead (needs read-identity).")
@click.option("--basis", default=None,
              help="The document establishing the representation (with --representative).")
@card_options
@pin_file_option
@json_option
def audit_self(code: str, representative: str | None, basis: str | None, reader: str | None,
               timeout: float, pin_file: Path | None, as_json: bool) -> None:
    """The resident's own identity information held: 4 information, record code and its
    change history (with read-code), recorded as a disclosure. Served to the resident in
    person (their card's JPKI authentication key and PIN) or to a legal representative."""
    from ..audit.anchors import checkpoints_path
    from ..audit.disclosure import disclosure_release, self_information
    from ..audit.provision import release_for
    from ..audit.report import incidental_text

    st = station()
    resident, requester = _requester(st, code, representative, basis, reader, timeout, pin_file)
    release = disclosure_release(release_for(st.home, st.actor, "SELF", "DISCLOSURE"),
                                 representative=representative is not None)
    info = self_information(st.registry, st.hsm, release, resident, requester,
                            show_codes=st.reveal("record_code"),
                            checkpoints_file=checkpoints_path(st.home.root), peers=_peers(st))
    identity = info["identity"] or {}
    emit(as_json, info, lambda: "\n".join(
        [f"{k}: {v}" for k, v in identity.items()]  # type: ignore[union-attr]
        + [f"record code: {info['record_code'] or '(not shown: needs read-code)'}"]
        + [f"  {h['code']} {h['status']} {h['assigned_at']} -> {h['retired_at'] or ''} "
           f"{h['reason'] or ''}" for h in info["code_history"] or []]  # type: ignore[union-attr]
        + incidental_text(info["incidental_information"])  # type: ignore[arg-type]
        + [f"requested by: {requester.get('name') or 'the resident in person'}"
           + (f" (legal representative; basis: {requester['basis']})"
              if requester["kind"] == "representative" else f" (card {requester['card_serial']})")]))


def register(cli: click.Group) -> None:
    cli.add_command(audit)
