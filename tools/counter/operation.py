"""The engine of the operations that rewrite a card's 4 information (``move-in``,
``continue-card``, ``change``): after the journal entry, the card steps to the journalled
target (idempotent: run again they leave the same card; a second signature key
supersedes the first), then one registry transaction (identity, card municipality, the
move, certificates, events, the journal ``done``). The first run and `juki issue recover`
run the same ``finish_operation``."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from cardlib.channel import ApduChannel
from cardlib.records import FourInfo
from hsm.token import Hsm

from ..pki.issued import crl_base_url
from ..registry import Registry, RegistryError
from ..registry.events import Event
from ..registry.operations import CardOperation
from .card_rewrite import CounterSigners, reissue_signature_certificate, rewrite_identity
from .card_session import CounterSession

REWRITES = ("move-in", "continue-card", "change")
EVENTS = {"move-in": "move-in", "continue-card": "card-continued", "change": "four-info-changed"}


@dataclass(frozen=True)
class ResidentIdentity:
    """The 4 information and the kana name, as the registry keeps them."""

    name: str
    name_kana: str | None
    birth_date: dt.date
    sex: str
    address: str

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ResidentIdentity:
        return cls(str(row["name"]), row.get("name_kana"),
                   dt.date.fromisoformat(str(row["birth_date"])), str(row["sex"]),
                   str(row["address"]))

    def as_row(self) -> dict[str, str | None]:
        return {"name": self.name, "name_kana": self.name_kana,
                "birth_date": self.birth_date.isoformat(), "sex": self.sex,
                "address": self.address}

    def four_info(self) -> FourInfo:
        return FourInfo(self.name, self.address, self.birth_date, self.sex)

    def __repr__(self) -> str:  # identity data stays out of logs and tracebacks
        return "ResidentIdentity(<redacted>)"


@dataclass(frozen=True)
class Changed:
    """What a counter operation did (``--json``); never the old or new values."""

    kind: str
    card_serial: str
    operation: int
    date: str
    fields: tuple[str, ...]
    municipality: dict[str, str]  # from, to
    signature_certificate: str | None  # serial number (hex) of the new one
    revoked: tuple[str, ...] = field(default=())
    move: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "card_serial": self.card_serial,
                "operation": self.operation, "date": self.date, "fields": list(self.fields),
                "municipality": self.municipality, "move": self.move,
                "signature_certificate": self.signature_certificate,
                "revoked_certificates": list(self.revoked)}


def registry_identity(registry: Registry, resident_id: int) -> ResidentIdentity:
    row = registry.identity_of(resident_id)
    if row is None:
        raise RegistryError(f"the registry holds no identity of resident {resident_id}: "
                            "re-issue the card")
    return ResidentIdentity.from_row(row)


def signature_serial(registry: Registry, card_serial: str) -> str | None:
    current = registry.current_certificate(card_serial, "jpki-sign")
    return current.serial_number if current is not None else None


def failure_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


def card_steps(channel: ApduChannel, hsm: Hsm, registry: Registry, operation: CardOperation,
                target: ResidentIdentity, municipality: str, reissue: bool, digest: bytes,
                settings: dict[str, Any], today: dt.date) -> str | None:
    """The card to ``target`` and ``municipality``; with ``reissue`` a new signature key
    and certificate (recorded before it is written). Returns its serial number (hex)."""
    serial = operation.card_serial
    card = registry.get(serial)
    assert card is not None and card.expiry is not None
    expiry = dt.date.fromisoformat(card.expiry)
    signers = CounterSigners.current(hsm)  # before the first APDU of the session
    issued_serial: list[str] = []

    def record(issued: Any) -> None:
        number = f"{issued.certificate.serial_number:x}"
        with registry.transaction() as db:
            registry.record_certificate(db, issued, card_serial=serial)
            registry.record_event(db, Event("certificate-issued", operation.kind,
                                            card_serial=serial, detail={
                                                "kind": issued.kind, "serial_number": number,
                                                "operation": operation.id}))
        issued_serial.append(number)

    with CounterSession.open(channel, hsm, serial) as session:
        rewrite_identity(session, hsm, signers, target.four_info(), municipality, serial, expiry,
                         number_digest=digest)
        if reissue:
            reissue_signature_certificate(session, hsm, signers, serial, target, expiry,
                                          target.birth_date, crl_base_url=crl_base_url(settings),
                                          today=today, on_issued=record)
    return issued_serial[-1] if issued_serial else None


def stale_signature_certificates(registry: Registry, serial: str,
                                  keep: tuple[str | None, ...]) -> tuple[str, ...]:
    return tuple(c.serial_number for c in registry.certificates_of(card_serial=serial,
                                                                   status="valid")
                 if c.kind == "jpki-sign" and c.serial_number not in keep)


def finish_operation(channel: ApduChannel, hsm: Hsm, registry: Registry,
                     settings: dict[str, Any], operation_id: int, digest: bytes,
                     today: dt.date, recovering: bool = False) -> Changed:
    """Card steps, then the registry transaction; any failure on the way leaves the
    operation ``interrupted`` (the exception goes on)."""
    operation = registry.operation(operation_id)
    if operation is None or operation.kind not in REWRITES:
        raise RegistryError(f"operation {operation_id} is not a 4-information rewrite")
    payload = operation.payload
    target = ResidentIdentity.from_row(payload["identity"])
    try:
        new = card_steps(channel, hsm, registry, operation, target, payload["municipality"],
                          bool(payload["signature_certificate"]), digest, settings, today)
        return _commit(registry, operation, target, new, recovering)
    except BaseException as exc:
        registry.interrupt_operation(operation.id, failure_text(exc))
        raise


def _commit(registry: Registry, operation: CardOperation, target: ResidentIdentity,
            new: str | None, recovering: bool) -> Changed:
    payload, serial = operation.payload, operation.card_serial
    old = payload.get("old_signature_certificate")
    resident = int(payload["resident_id"])
    move_id = payload.get("move")
    with registry.transaction() as db:
        registry.update_identity(db, resident, target.as_row(), serial, payload["municipality"])
        revoked = registry.revoke_certificates(db, reason="four-info-changed", card_serial=serial,
                                               serial_numbers=(old,)) if old else []
        stale = stale_signature_certificates(registry, serial, (new, old)) if new else ()
        if stale:
            revoked += registry.revoke_certificates(db, reason="superseded", card_serial=serial,
                                                    serial_numbers=stale)
        if operation.kind == "move-in":
            registry.complete_move(db, int(move_id), dt.date.fromisoformat(payload["date"]),
                                   target.address)
        elif operation.kind == "continue-card":
            registry.complete_move(db, int(move_id))
        registry.record_event(db, Event(EVENTS[operation.kind], payload["reason"],
                                        card_serial=serial, resident_id=resident, detail={
                                            "operation": operation.id, "move": move_id,
                                            "fields": ",".join(payload["fields"]),
                                            "date": payload["date"],
                                            "from": payload["from_municipality"],
                                            "to": payload["municipality"]}))
        if recovering:
            registry.record_event(db, Event("operation-finished", operation.kind,
                                            card_serial=serial, resident_id=resident,
                                            detail={"operation": operation.id}))
        registry.settle_operation(db, operation.id, "done")
    return Changed(operation.kind, serial, operation.id, payload["date"],
                   tuple(payload["fields"]), {"from": payload["from_municipality"],
                                              "to": payload["municipality"]},
                   new, tuple(revoked), move_id)


