"""Changes to the 4 information on an issued card (name on marriage, corrections, the
address of a move-in): the operation every such change runs.

1. The card proves itself (every check of `juki verify`, with the card-info PIN) before
   anything is written; the physical EF ``0001`` is read with that PIN, for DF31.
2. The operation is journalled (``card_operations``, ``pending``) with its target (the
   new identity and municipality, the move, whether a signature key is made; never a
   PIN, never the individual number).
3. Card, in the counter session: card-info EF ``0002``/``0003``, 共通AP record 1, and
   (unless refused) a new signature key and certificate. The new certificate is recorded
   ``valid`` in its own transaction before it is written to the card, so one the card
   never got can still be revoked.
4. Registry, one transaction: identity, card municipality, the move, certificates
   revoked (the old signature certificate ``four-info-changed``; any issued by an
   earlier try of the same operation ``superseded``), events, journal ``done``.

A failure between 2 and 4 leaves the operation ``interrupted``: `juki issue recover`
finishes it (steps 3 and 4 again) or rolls it back (``recovery``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from cardlib.apps.card_info import CardInfoApSession
from cardlib.apps.common import CommonApSession
from cardlib.channel import ApduChannel
from cardlib.constants import CardInfoFile
from cardlib.errors import ApduError, CardDataError
from cardlib.integrity import number_digest
from cardlib.records import ADDRESS_MAX_BYTES, NAME_MAX_BYTES
from hsm.token import Hsm

from ..errors import CardNotGenuineError, RequestError
from ..issuance.recovery import this_process
from ..pki.issued import crl_base_url
from ..registry import Registry, RegistryError
from ..resident.verifier import Verifier
from ..station.pins import Pin
from .operation import Changed, ResidentIdentity, finish_operation, registry_identity, signature_serial

FIELDS = {"name": "name", "name-kana": "name_kana", "address": "address", "sex": "sex"}
SEX_CODES = ("1", "2", "9")


@dataclass(frozen=True)
class Presented:
    """A card that proved itself: its serial, registry row and DF31."""

    serial: str
    resident_id: int
    municipality_code: str
    expiry: dt.date
    number_digest: bytes


def check_date(date: dt.date, today: dt.date, what: str) -> None:
    if date > today:
        raise RequestError("date", f"the {what} date {date} is in the future")


def check_value(field_name: str, value: str) -> str:
    """A new value of a 4-information field, checked like an issuance request's."""
    if field_name == "sex":
        if value not in SEX_CODES:
            raise RequestError("value", f"sex must be one of {', '.join(SEX_CODES)} (JIS X 0303)")
        return value
    limit = ADDRESS_MAX_BYTES if field_name == "address" else NAME_MAX_BYTES
    if not value.strip() or any(ord(c) < 0x20 for c in value):
        raise RequestError("value", f"the {field_name} must be non-empty, without control "
                                    "characters")
    if len(value.encode("utf-8")) > limit:
        raise RequestError("value", f"the {field_name} must be at most {limit} bytes in UTF-8")
    return value


def card_serial_claimed(channel: ApduChannel) -> str | None:
    """The serial the 共通AP record claims (free, unsigned: only for an early refusal)."""
    try:
        common = CommonApSession(channel)
        common.select()
        return common.read_card_info().card_serial
    except (ApduError, CardDataError):
        return None


def authenticate(channel: ApduChannel, hsm: Hsm, registry: Registry, settings: dict[str, Any],
                 pin: Pin, what: str) -> Presented:
    """The card proves itself with every check of `juki verify` (the card-info PIN
    presented once), or nothing is written: a suspended, revoked, expired (or lapsed)
    card is refused by name first. Then EF 0001 is read (the PIN opens it) for DF31."""
    crl_base_url(settings)  # a bad [crl] base_url is refused before any card I/O
    claimed = card_serial_claimed(channel)
    row = registry.get(claimed) if claimed else None
    if row is not None and row.status != "active":
        reason = f" ({row.status_reason})" if row.status_reason else ""
        raise RegistryError(f"card {claimed} is {row.status}{reason}: {what} needs an active "
                            "card")
    verdict = Verifier.for_station(registry, hsm, settings).verify(channel, ("pin", pin))
    if not verdict.genuine or verdict.card_serial is None:
        failed = [(c.name, c.detail) for c in verdict.checks if not c.ok] or [
            ("checks", "the card's checks did not complete")]
        raise CardNotGenuineError(verdict.card_serial, failed)
    card = registry.get(verdict.card_serial)
    assert card is not None and card.resident_id is not None and card.expiry is not None
    assert card.municipality_code is not None
    physical = CardInfoApSession(channel).read_file(CardInfoFile.INDIVIDUAL_NUMBER)
    return Presented(card.serial, card.resident_id, card.municipality_code,
                     dt.date.fromisoformat(card.expiry), number_digest(physical))


def change_identity(channel: ApduChannel, hsm: Hsm, registry: Registry,
                    settings: dict[str, Any], pin: Pin, field_name: str, value: str,
                    reason: str, date: dt.date, reissue_signature: bool = True,
                    today: dt.date | None = None) -> Changed:
    """`juki resident change`: one field of the 4 information (or the kana name)."""
    today = today or dt.date.today()
    if field_name == "birth-date":
        raise RequestError("field", "a birth-date change needs a new card: 照合番号B and the "
                                    "card-surface keys derive from the birth date "
                                    "(`juki card reissue`)")
    if field_name not in FIELDS:
        raise RequestError("field", f"must be one of {', '.join(FIELDS)}")
    check_date(date, today, "change")
    value = check_value(FIELDS[field_name], value)
    if not reason.strip():
        raise RequestError("reason", "must not be empty")
    card = authenticate(channel, hsm, registry, settings, pin, "a change of the 4 information")
    old = registry_identity(registry, card.resident_id)
    if old.as_row().get(FIELDS[field_name]) == value:  # no rewrite, no revocation for nothing
        raise RequestError("value", f"the {field_name} on record is already that value: "
                                    "nothing was changed")
    target = ResidentIdentity.from_row(old.as_row() | {FIELDS[field_name]: value})
    payload = {"resident_id": card.resident_id, "identity": target.as_row(),
               "municipality": card.municipality_code, "from_municipality": card.municipality_code,
               "date": date.isoformat(), "reason": reason, "fields": [FIELDS[field_name]],
               "signature_certificate": reissue_signature,
               "old_signature_certificate": signature_serial(registry, card.serial),
               "move": None}
    operation = registry.begin_operation(card.serial, "change", payload, this_process())
    return finish_operation(channel, hsm, registry, settings, operation, card.number_digest, today)
