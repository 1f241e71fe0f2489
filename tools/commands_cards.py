"""``juki issue``, ``juki verify``, ``juki card``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .cli import (
    EXIT_NOT_GENUINE,
    EXIT_USAGE,
    emit,
    json_option,
    reader_option,
    station,
    timeout_option,
)
from .pins import CARD_INFO_PIN, ISSUANCE_PINS, PinSpec, ResidentCardPins, collect_pins

pin_file_option = click.option(
    "--pin-file", type=click.Path(path_type=Path), default=None,
    help="File of name=value PIN lines (card_info, jpki_auth, jpki_sign), mode 600.")


def collect_cli_pins(specs: list[PinSpec], pin_file: Path | None, confirm: bool) -> dict:
    def prompt(spec: PinSpec) -> str:
        return click.prompt(spec.label, hide_input=True, confirmation_prompt=confirm,
                            err=True)

    return collect_pins(specs, pin_file=pin_file, stdin=sys.stdin,
                        stdin_is_tty=sys.stdin.isatty(), prompt=prompt)


recipient_option = click.option("--recipient", default=None,
                                help="Agency receiving the information (`juki audit recipients`).")
purpose_option = click.option("--purpose", default=None,
                              help="Purpose code permitted to that recipient.")
READ_FIELDS = {"identity": ["name", "birth_date", "sex", "address"],
               "number": ["individual_number"]}


def _release(recipient: str | None, purpose: str | None, required: bool):  # type: ignore[no-untyped-def]
    """The provision this command makes, its purpose checked (a refusal is recorded)."""
    from .audit.provision import check_purpose, release_for

    if recipient is None and purpose is None and not required:
        return None
    if recipient is None or purpose is None:
        raise click.UsageError("give both --recipient and --purpose")
    st = station()
    release = release_for(st.home, st.actor, recipient, purpose)
    check_purpose(st.registry, st.hsm, release, None,
                  st.home.settings().get("audit", {}).get("recipients_file"))
    return release


def _record(release, kind: str, fields: list[str], card_serial: str | None) -> int:  # type: ignore[no-untyped-def]
    from .audit.provision import record, resident_of_card

    st = station()
    resident_id, code = resident_of_card(st.registry, card_serial)
    return record(st.registry, st.hsm, release, kind=kind, fields=fields,
                  resident_id=resident_id, record_code=code, card_serial=card_serial)


@click.group()
def issue() -> None:
    """Issue cards."""


@issue.command("resident")
@click.argument("request_file", type=click.Path(path_type=Path))
@reader_option
@timeout_option
@pin_file_option
@json_option
def issue_resident(request_file: Path, reader: str | None, timeout: float,
                   pin_file: Path | None, as_json: bool) -> None:
    """Personalise a blank card as a resident card from REQUEST_FILE (JSON)."""
    from .cards import choose_reader, open_card
    from .issuance import issue_resident_card
    from .requests import load_request

    request = load_request(request_file)  # validated before any card I/O
    pins = ResidentCardPins.from_collected(collect_cli_pins(ISSUANCE_PINS, pin_file, confirm=True))
    st = station()
    hsm, registry = st.hsm, st.registry
    name = choose_reader(reader, timeout, blank=True)
    with open_card(name) as channel:
        issued = issue_resident_card(channel, hsm, registry, request, pins)
    emit(as_json, issued.as_json() | {"reader": name},
         f"issued card {issued.card_serial} in {name} (expires {issued.expiry})")


@issue.command("batch")
@click.argument("batch_file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--readers", default=None,
              help="Comma-separated readers to use (default: every reader present).")
@click.option("--timeout", default=60.0, show_default=True,
              help="Seconds each reader waits for its next blank card.")
@pin_file_option
@json_option
def issue_batch(batch_file: Path, readers: str | None, timeout: float, pin_file: Path | None,
                as_json: bool) -> int:
    """Issue every request of a JSON-lines file, one card per reader as blank cards are
    inserted; bad requests are reported and skipped. Exit 0 only if all were issued."""
    from cardlib import pcsc

    from .batch import parse_batch, run_batch

    lines = parse_batch(batch_file)
    pins = ResidentCardPins.from_collected(collect_cli_pins(ISSUANCE_PINS, pin_file, confirm=True))
    st = station()
    names = ([r for wanted in readers.split(",") for r in pcsc.resolve_reader(wanted, pcsc.list_readers())]
             if readers else pcsc.list_readers())
    st.registry.migrate()
    todo = sum(1 for line in lines if line.status == "not-issued")
    with click.progressbar(length=todo, label="issuing", file=sys.stderr) as bar:
        run_batch(lines, names, st.hsm, st.registry.location, pins, timeout,
                  progress=lambda _line: bar.update(1))
    summary = {s: sum(1 for line in lines if line.status == s)
               for s in ("issued", "rejected", "failed", "not-issued")}
    emit(as_json, {"summary": summary, "lines": [line.as_json() for line in lines]}, lambda: "\n".join(
        [f"{'line':>5}  {'status':10} {'card':15}  detail"]
        + [f"{line.line:>5}  {line.status:10} {line.card_serial or '-':15}  {line.detail}"
           for line in lines]
        + [", ".join(f"{k}: {v}" for k, v in summary.items())]))
    if summary["issued"] == len(lines):
        return 0
    return EXIT_USAGE if summary["rejected"] and not summary["failed"] else 3


@issue.command("unfinished")
@json_option
def issue_unfinished(as_json: bool) -> int:
    """Issuances still recorded ``issuing``, and which of them were interrupted (their
    process is gone). Exit 1 if any was interrupted."""
    from .recovery import owner_alive

    rows = station().registry.unfinished()
    report = [c.as_json() | {"interrupted": not owner_alive(c.owner)} for c in rows]
    emit(as_json, report, lambda: "\n".join(
        f"card {r['serial']}: issuing by {r['owner']}"
        + (" (INTERRUPTED)" if r["interrupted"] else "") for r in report) or "none")
    return 1 if any(r["interrupted"] for r in report) else 0


@issue.command("recover")
@json_option
def issue_recover(as_json: bool) -> None:
    """Mark every interrupted issuance ``failed`` (its card can then be issued again)."""
    from .recovery import fail_if_interrupted, interrupted

    registry = station().registry
    serials = [c.serial for c in interrupted(registry)]
    for serial in serials:
        fail_if_interrupted(registry, serial)
    emit(as_json, {"marked_failed": serials}, f"{len(serials)} interrupted issuance(s) marked failed")


@click.command()
@recipient_option
@purpose_option
@reader_option
@timeout_option
@json_option
def verify(recipient: str | None, purpose: str | None, reader: str | None, timeout: float,
           as_json: bool) -> int:
    """Is the presented card genuine? Challenge-response against the token. With
    --recipient/--purpose the verdict is a provision, recorded before it is shown."""
    from .cards import choose_reader, open_card
    from .verifier import Verifier

    release = _release(recipient, purpose, required=False)
    st = station()
    st.registry.expire_due()
    verifier = Verifier.from_token(st.registry, st.hsm)
    name = choose_reader(reader, timeout)
    with open_card(name) as channel:
        verdict = verifier.verify(channel)
    entry = None
    if release is not None and verdict.card_serial is not None:
        entry = _record(release, "provision", ["verification"], verdict.card_serial)

    def text() -> str:
        head = "GENUINE" if verdict.genuine else "NOT GENUINE"
        lines = [f"{head}: card {verdict.card_serial or '?'} in {name}"]
        lines += [f"  [{'ok' if c.ok else 'FAIL'}] {c.name}: {c.detail}" for c in verdict.checks]
        return "\n".join(lines)

    emit(as_json, verdict.as_json() | ({"provision_entry": entry} if entry is not None else {}),
         text)
    return 0 if verdict.genuine else EXIT_NOT_GENUINE


@click.group()
def card() -> None:
    """Read presented cards."""


@card.command("read")
@click.option("--what", type=click.Choice(["identity", "number", "all"]), default="identity",
              show_default=True, help="The 4 information, the individual number, or both.")
@recipient_option
@purpose_option
@reader_option
@timeout_option
@pin_file_option
@json_option
def card_read(what: str, recipient: str | None, purpose: str | None, reader: str | None,
              timeout: float, pin_file: Path | None, as_json: bool) -> None:
    """After the card-info PIN: the 4 information and/or the individual number, released
    only if the integrity record (EF 0003) verifies, and only after the provision to
    --recipient for --purpose is recorded."""
    from cardlib.apps.card_info import CardInfoApSession
    from cardlib.apps.common import CommonApSession

    from .card_read import IntegrityChecker, What, read_card_info
    from .cards import choose_reader, open_card

    release = _release(recipient, purpose, required=True)
    pins = collect_cli_pins([CARD_INFO_PIN], pin_file, confirm=False)
    checker = IntegrityChecker(station().hsm)
    name = choose_reader(reader, timeout)
    with open_card(name) as channel:
        reading = read_card_info(CardInfoApSession(channel), pins["card_info"], What(what), checker)
        common = CommonApSession(channel)
        common.select()
        serial = common.read_card_info().card_serial
    fields = READ_FIELDS["identity"] + READ_FIELDS["number"] if what == "all" else READ_FIELDS[what]
    entry = _record(release, "provision", fields, serial)
    payload = reading.as_json() | {"provision_entry": entry}
    emit(as_json, payload, "\n".join(f"{k}: {v}" for k, v in payload.items() if k != "integrity")
         + "\nintegrity record: verified")


@card.command("info")
@reader_option
@timeout_option
@json_option
def card_info(reader: str | None, timeout: float, as_json: bool) -> None:
    """Applications, serial, municipality, expiry, token kind and every PIN's tries left,
    without spending a try."""
    from .card_read import overview
    from .cards import choose_reader, open_card, probe

    name = choose_reader(reader, timeout)
    with open_card(name) as channel:
        applications, _ = probe(channel)
        result = overview(channel, applications)
    payload = result.as_json() | {"reader": name}

    def text() -> str:
        lines = [f"reader:       {name}", f"applications: {', '.join(result.applications)}",
                 f"card serial:  {result.card_serial}", f"municipality: {result.municipality_code}",
                 f"expiry:       {result.expiry}", f"token:        {result.token}"]
        for pin, status in result.pins.items():
            lines.append(f"PIN {pin:10} {status}")
        return "\n".join(lines)

    emit(as_json, payload, text)


@card.group("pin")
def card_pin() -> None:
    """PIN status and change."""


PIN_NAMES = ("card_info", "jpki_auth", "jpki_sign")


@card_pin.command("status")
@reader_option
@timeout_option
@json_option
def card_pin_status(reader: str | None, timeout: float, as_json: bool) -> None:
    """Tries left for every PIN (empty VERIFY: spends nothing)."""
    from .card_read import pin_statuses
    from .cards import choose_reader, open_card, probe

    name = choose_reader(reader, timeout)
    with open_card(name) as channel:
        applications, _ = probe(channel)
        statuses = pin_statuses(channel, applications)
    emit(as_json, statuses, lambda: "\n".join(f"{k}: {v}" for k, v in statuses.items()))


@card_pin.command("change")
@click.argument("pin_name", type=click.Choice(PIN_NAMES))
@reader_option
@timeout_option
@pin_file_option
@json_option
def card_pin_change(pin_name: str, reader: str | None, timeout: float, pin_file: Path | None,
                    as_json: bool) -> None:
    """Change a PIN: VERIFY the current one, then CHANGE REFERENCE DATA. From a pin file
    the current PIN is NAME= and the new one NAME_new=."""
    from dataclasses import replace

    from .card_read import PINS
    from .cards import choose_reader, open_card
    from .pins import ISSUANCE_PINS

    spec = next(s for s in ISSUANCE_PINS if s.name == pin_name)
    new_spec = replace(spec, name=f"{spec.name}_new", label=f"new {spec.label}")
    pins = collect_cli_pins([spec, new_spec], pin_file, confirm=False)
    session_class, pin_fid = PINS[pin_name]
    name = choose_reader(reader, timeout)
    with open_card(name) as channel:
        session = session_class(channel)
        session.select()
        session.verify_pin(pins[spec.name].reveal(), pin_fid)
        session.change_pin(pins[new_spec.name].reveal(), pin_fid)
    emit(as_json, {"pin": pin_name, "changed": True}, f"{pin_name} PIN changed")


@card.command("code")
@recipient_option
@purpose_option
@reader_option
@timeout_option
@json_option
def card_code(recipient: str | None, purpose: str | None, reader: str | None, timeout: float,
              as_json: bool) -> None:
    """The resident record code and its change history, over SCP03 (station keys),
    released only after the provision to --recipient for --purpose is recorded."""
    from .cards import choose_reader, open_card
    from .registry_ap import read_registry_ap

    release = _release(recipient, purpose, required=True)
    st = station()
    name = choose_reader(reader, timeout)
    with open_card(name) as channel:
        result = read_registry_ap(channel, st.hsm)
    entry = _record(release, "provision", ["record_code", "code_history"], result.card_serial)
    emit(as_json, result.as_json() | {"provision_entry": entry}, lambda: result.as_text())


@card.command("certs")
@reader_option
@timeout_option
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Write each certificate as NAME.pem into this directory.")
@click.option("--with-sign", is_flag=True,
              help="Also read the signature certificate (needs the jpki_sign PIN).")
@pin_file_option
@json_option
def card_certs(reader: str | None, timeout: float, out_dir: Path | None, with_sign: bool,
               pin_file: Path | None, as_json: bool) -> int:
    """JPKI certificates as PEM, each chain checked against the CA on the card."""
    from cryptography.hazmat.primitives import serialization

    from cardlib.apps.jpki import JpkiApSession

    from .cards import choose_reader, open_card
    from .jpki import read_certificates
    from .pins import JPKI_SIGN_PIN

    sign_pin = collect_cli_pins([JPKI_SIGN_PIN], pin_file, confirm=False)["jpki_sign"] if with_sign else None
    name = choose_reader(reader, timeout)
    with open_card(name) as channel:
        session = JpkiApSession(channel)
        session.select()
        reports = read_certificates(session, sign_pin)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        for report in reports:
            (out_dir / f"{report.name.replace('_', '-')}.pem").write_bytes(
                report.certificate.public_bytes(serialization.Encoding.PEM))
    emit(as_json, [r.as_json() for r in reports], lambda: "\n".join(
        f"{r.name:8} {r.certificate.subject.rfc4514_string()}  [{r.detail}]" for r in reports))
    return 0 if all(r.chain_ok is not False for r in reports) else EXIT_NOT_GENUINE


@card.command("sign")
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--key", "key_name", type=click.Choice(["auth", "sign"]), default="sign",
              show_default=True, help="JPKI key to sign with.")
@click.option("--out", "out_file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Where to write the detached CMS signature (default FILE.p7s).")
@reader_option
@timeout_option
@pin_file_option
@json_option
def card_sign(file: Path, key_name: str, out_file: Path | None, reader: str | None,
              timeout: float, pin_file: Path | None, as_json: bool) -> None:
    """A detached CMS (PKCS#7) signature over FILE: digest here, signature on the card."""
    from cardlib.apps.jpki import JpkiApSession, JpkiKey

    from .cards import choose_reader, open_card
    from .jpki import sign_detached
    from .pins import JPKI_AUTH_PIN, JPKI_SIGN_PIN

    key = JpkiKey(key_name)
    spec = JPKI_AUTH_PIN if key is JpkiKey.AUTH else JPKI_SIGN_PIN
    pin = collect_cli_pins([spec], pin_file, confirm=False)[spec.name]
    content = file.read_bytes()
    name = choose_reader(reader, timeout)
    with open_card(name) as channel:
        session = JpkiApSession(channel)
        session.select()
        signature, certificate = sign_detached(session, key, pin, content)
    target = out_file or file.with_name(file.name + ".p7s")
    target.write_bytes(signature)
    emit(as_json, {"signature_file": str(target), "key": key.value, "format": "CMS DER, detached",
                   "signer": certificate.subject.rfc4514_string()},
         f"{target}: detached CMS signature by the card's {key.value} key")


def register(cli: click.Group) -> None:
    for command in (issue, verify, card):
        cli.add_command(command)
