"""``juki card``: what a presented resident card holds (read, info, pin, code, certs,
sign) and, from ``card_lifecycle``, the registry's life cycle of cards (list, show,
suspend, resume, revoke, reissue, wipe)."""

from __future__ import annotations

from pathlib import Path

import click

from . import card_counter, card_diagnostics, card_face, card_lifecycle
from .common import (
    ExitCode,
    authenticated_card,
    card_options,
    client_path,
    collect_cli_pins,
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
    station_release,
    terminal,
    trust_store,
)

READ_FIELDS = {"identity": ["name", "birth_date", "sex", "address"],
               "number": ["individual_number"]}
PIN_NAMES = ("card_info", "jpki_auth", "jpki_sign")


@click.group()
def card() -> None:
    """Read presented cards."""


for _command in (card_lifecycle.COMMANDS + card_diagnostics.COMMANDS + card_counter.COMMANDS
                 + (card_face.card_face,)):
    card.add_command(_command)


@card.command("read")
@click.option("--what", type=click.Choice(["identity", "number", "all"]), default=None,
              help="The 4 information, the individual number, or both (default: identity; "
                   "number with --with a). 照合番号A opens only the number, B only the 4 "
                   "information.")
@credential_option
@click.option("--secure", is_flag=True,
              help="Read under the card-info AP's secure messaging: the PIN in the clear "
                   "first (so --with a|b also asks for it), SET SESSION KEY, then the "
                   "credential, SELECT and READ BINARY encrypted.")
@recipient_option
@purpose_option
@card_options
@pin_file_option
@json_option
def card_read(what: str | None, credential: str, secure: bool, recipient: str | None,
              purpose: str | None, reader: str | None, timeout: float, pin_file: Path | None,
              as_json: bool) -> None:
    """The card first proves itself (every check of `juki verify`; a card that fails one is
    refused before anything is read); then, after the credential of --with, the 4
    information and/or the individual number, released only if the integrity record
    (EF 0003) verifies under the key of EF 0004 chaining to a trust anchor and its
    digests match, and only after the provision to --recipient for --purpose is
    recorded under the serial the card proved."""
    from cardlib.apps.card_info import CardInfoApSession

    from ..resident.card_info import CREDENTIAL_KEYS, RELEASABLE, Credential, What, read_card_info
    from ..station.pins import CARD_INFO_PIN, CREDENTIALS

    key = CREDENTIAL_KEYS[credential]
    chosen = What(what) if what else (What.NUMBER if credential == "a" else What.IDENTITY)
    if chosen not in RELEASABLE[key]:
        raise click.UsageError(f"--with {credential} does not open --what {chosen.value}")
    release = provision_release(recipient, purpose, required=True)
    spec = CREDENTIALS[credential]
    specs = [spec] + ([CARD_INFO_PIN] if secure and spec is not CARD_INFO_PIN else [])
    pins = collect_cli_pins(specs, pin_file, confirm=False)
    pin = pins.get(CARD_INFO_PIN.name)
    presented_first = ("pin", pin) if secure and pin is not None else (credential,
                                                                      pins[spec.name])
    store = trust_store()
    with presented(reader, timeout) as (_name, channel):
        serial = authenticated_card(channel, release, presented_first, store)
        reading = read_card_info(CardInfoApSession(channel),
                                 Credential(key, pins[spec.name], secure, pin, presented=True),
                                 chosen, store.anchors())
    fields = READ_FIELDS["identity"] + READ_FIELDS["number"] if chosen is What.ALL else \
        READ_FIELDS[chosen.value]
    entry = record_provision(release, fields, serial)
    payload = reading.as_json() | {"provision_entry": entry}
    emit(as_json, payload, "\n".join(f"{k}: {v}" for k, v in payload.items() if k != "integrity")
         + "\nintegrity record: verified")


@card.command("info")
@card_options
@json_option
def card_info(reader: str | None, timeout: float, as_json: bool) -> None:
    """Applications, serial, municipality, expiry, token kind and every PIN's tries left,
    without spending a try."""
    from ..resident.card_info import overview
    from ..station.readers import probe

    with presented(reader, timeout) as (name, channel):
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
    """PIN status, change, and reset at the counter."""


for _command in card_counter.PIN_COMMANDS:
    card_pin.add_command(_command)


@card_pin.command("status")
@card_options
@json_option
def card_pin_status(reader: str | None, timeout: float, as_json: bool) -> None:
    """Tries left for every PIN (empty VERIFY: spends nothing)."""
    from ..resident.card_info import pin_statuses
    from ..station.readers import probe

    with presented(reader, timeout) as (_name, channel):
        applications, _ = probe(channel)
        statuses = pin_statuses(channel, applications)
    emit(as_json, statuses, lambda: "\n".join(f"{k}: {v}" for k, v in statuses.items()))


@card_pin.command("change")
@click.argument("pin_name", type=click.Choice(PIN_NAMES))
@card_options
@pin_file_option
@json_option
def card_pin_change(pin_name: str, reader: str | None, timeout: float, pin_file: Path | None,
                    as_json: bool) -> None:
    """Change a PIN: VERIFY the current one, then CHANGE REFERENCE DATA. From a pin file
    the current PIN is NAME= and the new one NAME_new=."""
    from dataclasses import replace

    from ..resident.card_info import change_pin
    from ..station.pins import ISSUANCE_PINS

    spec = next(s for s in ISSUANCE_PINS if s.name == pin_name)
    new_spec = replace(spec, name=f"{spec.name}_new", label=f"new {spec.label}")
    pins = collect_cli_pins([spec, new_spec], pin_file, confirm=False)
    with presented(reader, timeout) as (_name, channel):
        change_pin(channel, pin_name, pins[spec.name], pins[new_spec.name])
    emit(as_json, {"pin": pin_name, "changed": True}, f"{pin_name} PIN changed")


@card.command("code")
@recipient_option
@purpose_option
@credential_option
@card_options
@pin_file_option
@json_option
def card_code(recipient: str | None, purpose: str | None, credential: str, reader: str | None,
              timeout: float, pin_file: Path | None, as_json: bool) -> None:
    """The card first proves itself (every check of `juki verify`, with the credential of
    --with); then the resident
    record code and its change history, over SCP03 with the keys of the serial it proved,
    released only after the provision to --recipient for --purpose is recorded."""
    from ..resident.record_code import read_registry_ap

    release = provision_release(recipient, purpose, required=True)
    secret = collect_credential(credential, pin_file)
    st = station()
    with presented(reader, timeout) as (_name, channel):
        serial = authenticated_card(channel, release, secret)
        result = read_registry_ap(channel, st.hsm, serial)
    entry = record_provision(release, ["record_code", "code_history"], result.card_serial)
    emit(as_json, result.as_json() | {"provision_entry": entry}, lambda: result.as_text())


@card.command("certs")
@card_options
@click.option("--out", "out_dir", type=client_path(), default=None,
              help="Write each certificate as NAME.pem into this directory.")
@click.option("--with-sign", is_flag=True,
              help="Also read the signature certificate (needs the jpki_sign PIN).")
@pin_file_option
@json_option
def card_certs(reader: str | None, timeout: float, out_dir: Path | None, with_sign: bool,
               pin_file: Path | None, as_json: bool) -> ExitCode:
    """JPKI certificates as PEM, each chain checked against the CA on the card."""
    from cryptography.hazmat.primitives import serialization

    from cardlib.apps.jpki import JpkiApSession

    from ..resident.jpki import read_certificates
    from ..station.pins import JPKI_SIGN_PIN

    if with_sign:
        station().reveal("signature_certificate")  # read-identity, else denied and recorded
    sign_pin = collect_cli_pins([JPKI_SIGN_PIN], pin_file, confirm=False)["jpki_sign"] if with_sign else None
    with presented(reader, timeout) as (_name, channel):
        session = JpkiApSession(channel)
        session.select()
        reports = read_certificates(session, sign_pin)
    if with_sign:
        _record_signature_certificate(next(r.certificate for r in reports if r.name == "sign"))
    if out_dir is not None:
        terminal().make_dir(out_dir)
        for report in reports:
            terminal().write_file(out_dir / f"{report.name.replace('_', '-')}.pem",
                                  report.certificate.public_bytes(serialization.Encoding.PEM))
    emit(as_json, [r.as_json() for r in reports], lambda: "\n".join(
        f"{r.name:8} {r.certificate.subject.rfc4514_string()}  [{r.detail}]" for r in reports))
    return ExitCode.OK if all(r.chain_ok is not False for r in reports) else ExitCode.CHECK_FAILED


def _record_signature_certificate(certificate) -> int:  # type: ignore[no-untyped-def]
    """Record the release of a signature certificate (it carries the 4 information) to the
    station for the holder's service, before anything is written or printed. It is
    attributed to the card (and resident) it names only if this station's signature CA
    (or, for cards issued before it, the issuing CA) issued it; a certificate from
    elsewhere is recorded as no resident's."""
    from hsm.ca import role_certificates
    from hsm.roles import KeyRole

    from ..resident.jpki import certified_serial

    hsm = station().hsm  # JPKI signature certificates: resident-sign-ca (older: the auth CA)
    cas = [*role_certificates(hsm, KeyRole.RESIDENT_SIGN_CA),
           *role_certificates(hsm, KeyRole.RESIDENT_ISSUING_CA)]
    return record_provision(station_release("HOLDER-SERVICE"),
                            ["signature_certificate"], certified_serial(certificate, cas))


@card.command("sign")
@click.argument("file", type=client_path())
@click.option("--key", "key_name", type=click.Choice(["auth", "sign"]), default="sign",
              show_default=True, help="JPKI key to sign with.")
@click.option("--out", "out_file", type=client_path(), default=None,
              help="Where to write the detached CMS signature (default FILE.p7s).")
@card_options
@pin_file_option
@json_option
def card_sign(file: Path, key_name: str, out_file: Path | None, reader: str | None,
              timeout: float, pin_file: Path | None, as_json: bool) -> None:
    """A detached CMS (PKCS#7) signature over FILE: digest here, signature on the card."""
    from cardlib.apps.jpki import JpkiApSession, JpkiKey

    from ..resident.jpki import sign_detached
    from ..station.pins import JPKI_AUTH_PIN, JPKI_SIGN_PIN

    key = JpkiKey(key_name)
    if key is JpkiKey.SIGN:  # the CMS carries the signature certificate: the 4 information
        station().reveal("signature_certificate")
    spec = JPKI_AUTH_PIN if key is JpkiKey.AUTH else JPKI_SIGN_PIN
    pin = collect_cli_pins([spec], pin_file, confirm=False)[spec.name]
    content = read_client_file(file)
    with presented(reader, timeout) as (_name, channel):
        session = JpkiApSession(channel)
        session.select()
        signature, certificate = sign_detached(session, key, pin, content)
    if key is JpkiKey.SIGN:
        _record_signature_certificate(certificate)
    target = out_file or file.with_name(file.name + ".p7s")
    terminal().write_file(target, signature)
    emit(as_json, {"signature_file": str(target), "key": key.value, "format": "CMS DER, detached",
                   "signer": certificate.subject.rfc4514_string()},
         f"{target}: detached CMS signature by the card's {key.value} key")
