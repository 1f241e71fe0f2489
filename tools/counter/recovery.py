"""Finishing and rolling back the journalled operations that rewrite a card's 4
information (``move-in``, ``continue-card``, ``change``); `juki issue recover` also
settles E's ``pin-reset`` and ``renew`` through their own functions.

``finish_operation`` is the whole of such an operation after its journal entry: the card
steps to the journalled target (idempotent: run again, they leave the same card; a
second signature key supersedes the first), then one registry transaction. Its first
run and `juki issue recover` are the same code. ``roll_back_operation`` rewrites the card
to what the registry holds (identity, municipality; a new signature certificate for
that identity if the journal says a new key may have been made) and settles
``rolled-back``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from cardlib.apps.card_info import CardInfoApSession, CardInfoKey
from cardlib.channel import ApduChannel
from cardlib.constants import CardInfoFile
from cardlib.integrity import number_digest
from hsm.token import Hsm

from ..issuance.recovery import owner_alive
from ..registry import Registry, RegistryError
from ..registry.events import Event
from ..registry.operations import CardOperation
from ..station.pins import Pin
from .card_session import CounterSession
from .operation import (
    REWRITES,
    Changed,
    card_steps,
    crl_base_url,
    finish_operation,
    registry_identity,
    stale_signature_certificates,
)


def roll_back_operation(channel: ApduChannel, hsm: Hsm, registry: Registry,
                        settings: dict[str, Any], operation_id: int, digest: bytes,
                        today: dt.date) -> Changed:
    """The card back to the registry's identity and municipality; ``rolled-back``."""
    operation = registry.operation(operation_id)
    if operation is None or operation.kind not in REWRITES:
        raise RegistryError(f"operation {operation_id} is not a 4-information rewrite")
    serial, payload = operation.card_serial, operation.payload
    card = registry.get(serial)
    assert card is not None and card.municipality_code is not None
    current = registry_identity(registry, int(payload["resident_id"]))
    reissue = bool(payload["signature_certificate"])
    new = card_steps(channel, hsm, registry, operation, current, card.municipality_code,
                      reissue, digest, settings, today)
    with registry.transaction() as db:
        stale = stale_signature_certificates(registry, serial, (new,)) if new else ()
        revoked = registry.revoke_certificates(db, reason="superseded", card_serial=serial,
                                               serial_numbers=stale) if stale else []
        registry.record_event(db, Event("operation-rolled-back", operation.kind,
                                        card_serial=serial,
                                        resident_id=int(payload["resident_id"]),
                                        detail={"operation": operation.id}))
        registry.settle_operation(db, operation.id, "rolled-back")
    return Changed(operation.kind, serial, operation.id, payload["date"], (),
                   {"from": card.municipality_code, "to": card.municipality_code}, new,
                   tuple(revoked), payload.get("move"))


def open_operations(registry: Registry) -> list[CardOperation]:
    """Open operations; a ``pending`` one whose owner is gone is marked ``interrupted``."""
    for operation in registry.open_operations():
        if operation.status == "pending" and not owner_alive(operation.owner):
            registry.interrupt_operation(operation.id, f"interrupted: its process "
                                                       f"{operation.owner} is gone")
    return registry.open_operations()


def listed(operation: CardOperation) -> dict[str, Any]:
    """An open operation for the screen: its journal without the identity it carries."""
    data = operation.as_json()
    data["payload"] = {k: v for k, v in operation.payload.items() if k != "identity"}
    return data


def digest_with_pin(channel: ApduChannel, hsm: Hsm, serial: str, pin: Pin) -> bytes:
    """DF31 for a recovery: the card proves it is ``serial`` (the counter session's SCP03
    authentication with its transport keys) before the PIN is presented; then the
    physical EF 0001, which the PIN opens."""
    with CounterSession.open(channel, hsm, serial):
        pass
    card_info = CardInfoApSession(channel)
    card_info.select()
    card_info.present(CardInfoKey.PIN, pin.reveal())
    return number_digest(card_info.read_file(CardInfoFile.INDIVIDUAL_NUMBER))


def recover_operation(channel: ApduChannel | None, hsm: Hsm, registry: Registry,
                      settings: dict[str, Any], operation_id: int, pin: Pin | None,
                      roll_back: bool, today: dt.date | None = None) -> dict[str, Any]:
    """`juki issue recover --operation ID [--roll-back]`: finish (or roll back) one open
    operation with its card present."""
    operation = next((o for o in open_operations(registry) if o.id == operation_id), None)
    if operation is None:
        raise RegistryError(f"operation {operation_id} is not open")
    if operation.status == "pending":
        raise RegistryError(f"operation {operation_id} is still running ({operation.owner})")
    today = today or dt.date.today()
    if operation.kind == "pin-reset":
        from .pin_reset import settle_interrupted_pin_reset

        return {"operation": operation_id, "status": "rolled-back",
                "note": settle_interrupted_pin_reset(registry, operation)}
    if channel is None:
        raise RegistryError(f"operation {operation_id} ({operation.kind}) needs its card")
    if operation.kind == "renew":
        from .renewal import finish_interrupted_renewal

        if roll_back:
            raise RegistryError("a renewal cannot be rolled back: finish it (new keys again)")
        renewed = finish_interrupted_renewal(channel, hsm, registry, operation,
                                             crl_base_url(settings), today)
        return {"operation": operation_id, "status": "done"} | renewed.as_json()
    if pin is None:
        raise RegistryError(f"operation {operation_id} ({operation.kind}) needs the card-info "
                            "PIN: DF31 of the integrity record is the digest of EF 0001")
    digest = digest_with_pin(channel, hsm, operation.card_serial, pin)
    if roll_back:
        done = roll_back_operation(channel, hsm, registry, settings, operation_id, digest, today)
        return {"status": "rolled-back"} | done.as_json()
    done = finish_operation(channel, hsm, registry, settings, operation_id, digest, today,
                            recovering=True)
    return {"status": "done"} | done.as_json()
