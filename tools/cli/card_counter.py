"""``juki card pin reset`` and ``juki card renew``: counter work on an issued card (joined to
``juki card`` by ``card``)."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import CardNotGenuineError
from ..registry.records import RegistryError
from .common import (
    authenticated_card,
    card_options,
    collect_cli_pins,
    collect_credential,
    emit,
    json_option,
    pin_file_option,
    presented,
    station,
    station_release,
)

PIN_TARGETS = ("card-info", "jpki-auth", "jpki-sign", "juki", "common")  # pin_reset.TARGETS


def counter_card(channel, credential, operation: str) -> str:  # type: ignore[no-untyped-def]
    """The serial of the card on ``channel`` once it has passed every check of `juki
    verify` with ``credential`` and is active in the registry. A genuine card that is
    only not active (suspended, revoked, expired) is refused by name; any other failure
    is ``CardNotGenuineError`` (recorded as a refusal)."""
    try:
        return authenticated_card(channel, station_release("REGISTRY-ADMIN"), credential)
    except CardNotGenuineError as exc:
        failed = {name for name, _ in exc.failed}
        record = station().registry.get(exc.claimed_serial) if exc.claimed_serial else None
        if record is not None and record.status != "active" and failed <= {"card_record",
                                                                           "registry_status"}:
            reason = f" ({record.status_reason})" if record.status_reason else ""
            raise RegistryError(f"card {record.serial} is {record.status}{reason}: {operation} is "
                                "refused for a card that is not active") from None
        raise


@click.command("reset")
@click.option("--pin", "target", type=click.Choice(PIN_TARGETS), required=True,
              help="Which PIN: card-info, jpki-auth, jpki-sign, juki (住基AP) or common (共通AP).")
@click.option("--reason", required=True, help="Why (forgotten, blocked …; recorded with the event).")
@click.option("--identity-document", "document", required=True,
              help="The kind of identity document the operator checked (e.g. passport, "
                   "運転免許証; recorded with the event; its number is not: digits are refused).")
@click.option("--with", "credential", type=click.Choice(["a", "b"]), default="b",
              show_default=True,
              help="The card proves itself with 照合番号A (pin file name collation_a) or B "
                   "(collation_b) from its face, not with a PIN.")
@card_options
@pin_file_option
@json_option
def card_pin_reset(target: str, reason: str, document: str, credential: str, reader: str | None,
                   timeout: float, pin_file: Path | None, as_json: bool) -> None:
    """Reset a forgotten or blocked PIN after checking the resident's identity: the card
    proves itself (every check of `juki verify` with 照合番号A/B, registry status active),
    then RESET RETRY COUNTER in the issuer domain's SCP03 session (keys derived in the
    token) sets the value the resident enters and restores its tries; no other PIN is
    touched. The new value comes from a hidden prompt (asked twice), stdin (the
    credential's line first) or the pin file (NAME_new: card_info_new, jpki_auth_new,
    jpki_sign_new, juki_new, common_new), never from the command line."""
    from ..counter.pin_reset import NEW_PIN_SPECS, check_request, reset_pin
    from ..issuance.recovery import this_process

    document, reason = check_request(target, document, reason)
    spec = NEW_PIN_SPECS[target]
    secret = collect_credential(credential, pin_file)
    new_value = collect_cli_pins([spec], pin_file, confirm=True)[spec.name]
    st = station()
    with presented(reader, timeout) as (_name, channel):
        serial = counter_card(channel, secret, "a PIN reset")
        done = reset_pin(channel, st.hsm, st.registry, serial, target, new_value, document,
                         reason, this_process())
    emit(as_json, done.as_json(), f"card {serial}: {target} PIN reset (tries restored)")


@click.command("renew")
@click.option("--window", "window_days", type=click.IntRange(min=0), default=None,
              help="Renew certificates that expire within this many days (default: the "
                   "station's [counter] renewal_window_days, 90).")
@click.option("--with", "credential", type=click.Choice(["pin", "a", "b"]), default="pin",
              show_default=True,
              help="Credential the card proves itself with: the card-info PIN (pin file name "
                   "card_info), 照合番号A (collation_a) or B (collation_b).")
@card_options
@pin_file_option
@json_option
def card_renew(window_days: int | None, credential: str, reader: str | None, timeout: float,
               pin_file: Path | None, as_json: bool) -> None:
    """New JPKI certificates for a card whose certificates expire within the window (or
    have): the card proves itself (every check of `juki verify`, registry status active),
    both JPKI keys are generated again on the card, certified in the token and written
    over SCP03; the old certificates are revoked (renewed). Refused when nothing is due,
    or when the card itself expires within the window (reissue it)."""
    from ..counter.renewal import plan_renewal, renew_certificates
    from ..issuance.recovery import this_process

    st = station()
    window = window_days if window_days is not None else _renewal_window_days()
    secret = collect_credential(credential, pin_file)
    with presented(reader, timeout) as (_name, channel):
        serial = counter_card(channel, secret, "renewal")
        plan = plan_renewal(st.registry, serial, window)
        done = renew_certificates(channel, st.hsm, st.registry, plan, _crl_base_url(),
                                  this_process())

    def text() -> str:
        return "\n".join([f"card {serial}: JPKI certificates renewed"] + [
            f"  {row['kind']:9} {row['serial_number']} until {row['not_after']}"
            for row in done.issued] + [f"  revoked (renewed): {s}" for s in done.revoked])

    emit(as_json, done.as_json(), text)


def _renewal_window_days() -> int:
    from ..counter.settings import CounterSettings

    return CounterSettings.from_settings(station().home.settings()).renewal_window_days


def _crl_base_url() -> str:
    from ..pki.issued import crl_base_url

    return crl_base_url(station().home.settings())


PIN_COMMANDS = (card_pin_reset,)
COMMANDS = (card_renew,)
