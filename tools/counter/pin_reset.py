"""PIN reset and unblock at the counter (issue 13 §3).

A resident who forgot or blocked a PIN gets a new one after the operator has checked
their identity (the document seen is recorded with the event). The card proves itself
first without that PIN (every check of `juki verify` with 照合番号A or B, registry status
active: the caller does that); the reset then runs under the issuer's authority, over
the issuer domain's SCP03 session with keys derived in the token (``CounterSession``):
RESET RETRY COUNTER sets the new value and restores that PIN's tries, and touches no
other PIN. The station never knows, stores or logs a PIN: the journal holds the target
only, the event its name, the document and the card.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from cardlib.channel import ApduChannel
from cardlib.constants import Ins
from cardlib.transport import Transport
from hsm.token import Hsm

from ..registry import Registry
from ..registry.events import Event
from ..registry.operations import CardOperation
from ..station.pins import CARD_INFO_PIN, DIGITS, JPKI_AUTH_PIN, JPKI_SIGN_PIN, Pin, PinSpec
from .card_session import CounterSession

log = logging.getLogger(__name__)

OPERATION_KIND = "pin-reset"
EVENT = "pin-reset"
ROLLED_BACK_NOTE = "the PIN may or may not have been reset; reset it again"

_FOUR_DIGITS = PinSpec("", "", 4, 4, DIGITS, "4 digits")


def _new(spec: PinSpec, name: str, label: str) -> PinSpec:
    return replace(spec, name=f"{name}_new", label=f"new {label}")


# The targets of `juki card pin reset --pin`, each with the format of its new value (the
# host checks it before any card I/O; the card enforces the same rule). The pin-file
# name of the new value is ``<target with _>_new``.
NEW_PIN_SPECS: dict[str, PinSpec] = {
    "card-info": _new(CARD_INFO_PIN, "card_info", "card-info PIN (4 digits)"),
    "jpki-auth": _new(JPKI_AUTH_PIN, "jpki_auth", "JPKI authentication PIN (4 digits)"),
    "jpki-sign": _new(JPKI_SIGN_PIN, "jpki_sign", "JPKI signature PIN (6-16 of A-Z 0-9)"),
    "juki": _new(_FOUR_DIGITS, "juki", "住基AP PIN (4 digits)"),
    "common": _new(_FOUR_DIGITS, "common", "共通AP PIN (4 digits)"),
}
TARGETS = tuple(NEW_PIN_SPECS)


@dataclass(frozen=True)
class PinReset:
    card_serial: str
    target: str
    identity_document: str
    reason: str
    operation: int

    def as_json(self) -> dict[str, object]:
        return {"card_serial": self.card_serial, "pin": self.target, "reset": True,
                "identity_document": self.identity_document, "reason": self.reason,
                "operation": self.operation}


def check_request(target: str, identity_document: str, reason: str) -> tuple[str, str]:
    """The operator's side of the request, before anything is asked of the resident or
    the card: a known target, the identity document named, a reason given."""
    from ..errors import PinInputError

    if target not in NEW_PIN_SPECS:
        raise PinInputError(f"--pin must be one of {', '.join(TARGETS)}, not {target!r}")
    document, why = identity_document.strip(), reason.strip()
    if not document:
        raise PinInputError("--identity-document must name the document the resident showed")
    if any(ch.isdigit() for ch in document):
        # the event log is permanent and read with audit-read: the kind of document goes
        # there, never its number (a passport or licence number is personal data)
        raise PinInputError("--identity-document names the kind of document (e.g. passport, "
                            "運転免許証), not its number: digits are refused")
    if not why:
        raise PinInputError("--reason must say why the PIN is reset")
    return document, why


def reset_pin(channel, hsm: Hsm, registry: Registry, card_serial: str,  # type: ignore[no-untyped-def]
              target: str, new_value: Pin, identity_document: str, reason: str,
              owner: str | None) -> PinReset:
    """Reset ``target`` on the card ``card_serial`` (already authenticated on ``channel``)
    to ``new_value``: journal, RESET RETRY COUNTER in the counter session, then the event
    and the journal's ``done`` in one transaction.

    A failure before RESET RETRY COUNTER was handed to the reader (the SCP03 session, the
    token, the SELECTs) changed no PIN: the operation is ``rolled-back`` at once. Once it
    was sent, anything but its MACed ``9000`` (the card pulled, a garbled or an error
    answer: SCP03 does not MAC an error status word) leaves the card's PIN unknown, and a
    failure to record a confirmed reset leaves the registry behind the card: both leave
    the operation ``interrupted`` for `juki issue recover` (rolled back with the note
    "may or may not have been reset"). After the MACed 9000, a failure only to close the
    session (its keys in the token) does not undo the reset: it is recorded."""
    spec = NEW_PIN_SPECS[target]
    value = spec.check(new_value.reveal())  # the card checks too; never send what we refuse
    card = registry.get(card_serial)
    resident_id = card.resident_id if card is not None else None
    operation = registry.begin_operation(card_serial, OPERATION_KIND, {"target": target}, owner)
    _reset_on_card(channel, hsm, registry, card_serial, target, value, operation)
    try:
        with registry.transaction() as db:
            registry._log_event(db, Event(EVENT, reason, card_serial=card_serial,
                                          resident_id=resident_id,
                                          detail={"target": target,
                                                  "identity_document": identity_document,
                                                  "card_serial": card_serial}))
            registry.settle_operation(db, operation, "done")
    except BaseException as exc:
        registry.interrupt_operation(operation, CONFIRMED + _failure(exc, value))
        raise
    return PinReset(card_serial, target, identity_document, reason, operation)


CONFIRMED = "the card confirmed the reset; recording it failed: "


def _reset_on_card(channel, hsm: Hsm, registry: Registry, card_serial: str,  # type: ignore[no-untyped-def]
                   target: str, value: Pin, operation: int) -> None:
    """RESET RETRY COUNTER in the counter session. On a failure the journal says what is
    known (see ``reset_pin``) and the exception goes on; a failure only to close the
    session after the card's MACed 9000 (its keys in the token) leaves the reset done."""
    watch = _ResetWatch(channel.transport)
    confirmed = False
    try:
        with CounterSession.open(ApduChannel(watch, channel.max_get_response_rounds), hsm,
                                 card_serial) as session:
            session.reset_pin(target, value.reveal())
            confirmed = True
    except BaseException as exc:
        if confirmed and isinstance(exc, Exception):
            log.warning("card %s: PIN %s reset; closing the counter session failed (%s)",
                        card_serial, target, type(exc).__name__)
            return
        if confirmed:
            registry.interrupt_operation(operation, CONFIRMED + _failure(exc, value))
        elif watch.reset_sent:
            registry.interrupt_operation(operation, _failure(exc, value))
        else:  # RESET RETRY COUNTER never left the host: no PIN changed
            with registry.transaction() as db:
                registry.settle_operation(db, operation, "rolled-back")
        raise


class _ResetWatch:
    """The reader's transport under the counter session, noting whether RESET RETRY
    COUNTER has been handed to the card (its INS is in the clear under SCP03)."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.reset_sent = False

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]:
        if len(apdu) > 1 and apdu[1] == Ins.RESET_RETRY_COUNTER:
            self.reset_sent = True
        return self.inner.send_and_receive(apdu)

    def close(self) -> None:
        self.inner.close()


def _failure(exc: BaseException, value: Pin) -> str:
    """What the journal keeps of a failure: its type and message, never the PIN (the
    card layer never puts one in a message; this is the second belt)."""
    text = f"{type(exc).__name__}: {exc}"
    return text.replace(value.reveal(), "<redacted>") if value.reveal() else text


def settle_interrupted_pin_reset(registry: Registry, operation: CardOperation) -> str:
    """`juki issue recover` for an interrupted ``pin-reset``: it cannot be finished (the
    value was never stored), so it is rolled back, with the note the operator tells the
    resident. Returns the note."""
    if operation.kind != OPERATION_KIND:
        raise ValueError(f"operation {operation.id} is a {operation.kind}, not a {OPERATION_KIND}")
    with registry.transaction() as db:
        registry.settle_operation(db, operation.id, "rolled-back")
        registry._log_event(db, Event("operation-rolled-back", ROLLED_BACK_NOTE,
                                      card_serial=operation.card_serial,
                                      detail={"operation": operation.id,
                                              "kind": OPERATION_KIND,
                                              "target": operation.payload.get("target")}))
    return ROLLED_BACK_NOTE
