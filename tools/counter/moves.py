"""Moving with the card (特例転出・特例転入): the counter's rules around the registry's
moves (``tools.registry.moves``) and the card rewrite (``operation``).

- move-out at the old municipality: a planned move, no card (the card stays valid);
- move-in at the new one, with the card and its card-info PIN: the planned move found
  and its deadlines checked (``CounterSettings``), then the 4-information operation
  (address and municipality rewritten, the signature certificate revoked and, unless
  declined, a new one issued onto the card);
- move-in without the card (``card_later``): the notification only; the card's continued
  use (``continue_card``) is due within ``continued_use_days``, or the card lapses.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from cardlib.channel import ApduChannel
from cardlib.checkdigits import is_valid_municipality_code
from hsm.token import Hsm

from ..errors import RequestError
from ..issuance.recovery import this_process
from ..registry import Registry, RegistryError
from ..registry.events import Event
from ..registry.moves import Move
from ..station.pins import Pin
from .identity_change import Presented, authenticate, check_date, check_value
from .operation import Changed, finish_operation, registry_identity, signature_serial
from .settings import CounterSettings


def run_deadlines(registry: Registry, settings: dict[str, Any],
                  today: dt.date | None = None) -> list[int]:
    """Planned moves past their grace expire, moved-in ones past their continued-use
    deadline lapse (their card expired): run by verify, card list and the move commands."""
    rules = CounterSettings.from_settings(settings)
    return registry.lapse_due(today or dt.date.today(), rules.move_out_grace_days,
                              rules.continued_use_days)


def check_municipality(code: str) -> str:
    if len(code) != 6 or not code.isascii() or not code.isdigit() or \
            not is_valid_municipality_code(code):
        raise RequestError("municipality", "must be 6 digits with a valid check digit "
                                           "(modulus 11, weights 6-2)")
    return code


def resident_of(registry: Registry, code: str) -> int:
    found = registry.resident_of_code(code)
    if found is None or found[1] != "active":
        raise RegistryError(f"record code {code} is not an active code")
    return found[0]


def move_out(registry: Registry, settings: dict[str, Any], code: str, to: str, date: dt.date,
             reason: str, today: dt.date | None = None) -> Move:
    """`juki resident move-out`: the planned move of the resident holding ``code``."""
    check_municipality(to)
    if not reason.strip():
        raise RequestError("reason", "must not be empty")
    ahead = CounterSettings.from_settings(settings).move_out_advance_days
    latest = (today or dt.date.today()) + dt.timedelta(days=ahead)
    if date > latest:
        raise RequestError("date", f"a move-out is notified at most {ahead} days before the "
                                   f"planned date (move_out_advance_days): {date} is after "
                                   f"{latest}")
    resident = resident_of(registry, code)
    run_deadlines(registry, settings, today)
    return registry.record_move(resident, to, date, reason)


def _open_move(registry: Registry, resident: int, municipality: str, date: dt.date,
               rules: CounterSettings, today: dt.date, card_serial: str | None) -> Move:
    """The resident's planned move into ``municipality``, within its deadlines; a move
    found past them is expired here (not by an earlier sweep, so that the refusal names
    the rule and its setting)."""
    move = registry.open_move_of(resident)
    who = f"card {card_serial}'s resident" if card_serial else "the resident"
    if move is None:
        raise RegistryError(f"{who} has no planned move-out: it is recorded at the old "
                            "municipality first (`juki resident move-out`)")
    if move.status == "moved-in":
        raise RegistryError(f"the move-in of {who} was already notified on "
                            f"{move.moved_in_date}: `juki resident continue-card` with the card")
    if move.to_municipality != municipality:
        raise RegistryError(f"the planned move of {who} goes to {move.to_municipality}, not "
                            f"{municipality}")
    last = dt.date.fromisoformat(move.planned_date) + dt.timedelta(days=rules.move_out_grace_days)
    if today > last:
        rule = (f"the move-in is due within {rules.move_out_grace_days} days of the planned "
                f"move-out date {move.planned_date} (move_out_grace_days), by {last}")
        registry.expire_move(move.id, rule)
        raise RegistryError(f"refused: {rule}; the planned move has expired")
    if (today - date).days > rules.move_in_notice_days:
        raise RegistryError(f"refused: the move-in is notified within "
                            f"{rules.move_in_notice_days} days of moving in "
                            f"(move_in_notice_days); moved in {date}, today {today}")
    return move


def _address(address: str) -> str:
    return check_value("address", address)


def move_in(channel: ApduChannel, hsm: Hsm, registry: Registry, settings: dict[str, Any],
            pin: Pin, address: str, municipality: str, date: dt.date,
            reissue_signature: bool = True, today: dt.date | None = None) -> Changed:
    """`juki resident move-in` with the card: authenticated, the move found, rewritten."""
    today = today or dt.date.today()
    rules = CounterSettings.from_settings(settings)
    check_municipality(municipality)
    check_date(date, today, "move-in")
    address = _address(address)
    card = authenticate(channel, hsm, registry, settings, pin, "moving with the card")
    move = _open_move(registry, card.resident_id, municipality, date, rules, today, card.serial)
    target = registry_identity(registry, card.resident_id).as_row() | {"address": address}
    return _rewrite(channel, hsm, registry, settings, card, "move-in", move, target,
                    date.isoformat(), reissue_signature, today)


def _rewrite(channel: ApduChannel, hsm: Hsm, registry: Registry, settings: dict[str, Any],
             card: Presented, kind: str, move: Move, target: dict[str, Any], date: str,
             reissue_signature: bool, today: dt.date) -> Changed:
    payload = {"resident_id": card.resident_id, "identity": target,
               "municipality": move.to_municipality, "from_municipality": move.from_municipality,
               "date": date, "reason": move.reason, "fields": ["address"],
               "signature_certificate": reissue_signature,
               "old_signature_certificate": signature_serial(registry, card.serial),
               "move": move.id}
    with registry.transaction() as db:  # the move still open, under the write lock:
        # another station that completed it since our check loses no race to us
        row = db.execute("SELECT status FROM moves WHERE id = ?", (move.id,)).fetchone()
        if row is None or row[0] != move.status:
            raise RegistryError(f"move {move.id} is {row[0] if row else 'gone'} now (another "
                                "station settled it): nothing was written to the card")
        operation = registry.begin_operation_in(db, card.serial, kind, payload, this_process())
    return finish_operation(channel, hsm, registry, settings, operation, card.number_digest,
                            today)


def card_later(registry: Registry, settings: dict[str, Any], code: str, address: str,
               municipality: str, date: dt.date, today: dt.date | None = None) -> Move:
    """`juki resident move-in --card-later`: the move-in notified without the card. The
    registry's identity takes the new address, the signature certificate (it carries
    the old one) is revoked, and the card's continued use falls due."""
    today = today or dt.date.today()
    rules = CounterSettings.from_settings(settings)
    check_municipality(municipality)
    check_date(date, today, "move-in")
    address = _address(address)
    resident = resident_of(registry, code)
    move = _open_move(registry, resident, municipality, date, rules, today, None)
    identity = registry_identity(registry, resident).as_row() | {"address": address}
    with registry.transaction() as db:
        registry.update_identity(db, resident, identity)
        if move.card_serial is not None:
            registry.revoke_certificates(db, reason="four-info-changed",
                                         card_serial=move.card_serial, kinds=("jpki-sign",))
        registry.notify_move_in(db, move.id, date, address, rules.continued_use_days)
        registry.record_event(db, Event("move-in", move.reason, card_serial=move.card_serial,
                                        resident_id=resident, detail={
                                            "move": move.id, "date": date.isoformat(),
                                            "from": move.from_municipality,
                                            "to": move.to_municipality, "card_later": True}))
    found = registry.move(move.id)
    assert found is not None
    return found


def continue_card(channel: ApduChannel, hsm: Hsm, registry: Registry,
                  settings: dict[str, Any], pin: Pin, reissue_signature: bool = True,
                  today: dt.date | None = None) -> Changed:
    """`juki resident continue-card`: the card of a notified move rewritten (address and
    municipality) before its continued-use deadline; the move completed."""
    today = today or dt.date.today()
    run_deadlines(registry, settings, today)
    card = authenticate(channel, hsm, registry, settings, pin, "the card's continued use")
    move = registry.open_move_of(card.resident_id)
    if move is None or move.status != "moved-in" or move.card_serial != card.serial:
        raise RegistryError(f"card {card.serial}'s resident has no notified move-in awaiting "
                            "the card (`juki resident move-in --card-later` first)")
    target = registry_identity(registry, card.resident_id).as_row()
    return _rewrite(channel, hsm, registry, settings, card, "continue-card", move, target,
                    today.isoformat(), reissue_signature, today)
