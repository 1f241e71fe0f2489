"""Renewal of a card's JPKI certificates at the counter (issue 13 §4).

The card and each certificate carry their own expiry: the card ten years after issuance,
the JPKI certificates until the holder's fifth birthday after theirs (at most the card's
expiry). When a card's current authentication or signature certificate (the registry's
``current_certificate``) falls due within the renewal window (``[counter]
renewal_window_days``, or ``--window``) or has expired, both JPKI keys are generated
again on the card (``0017``, ``001A``), certified by their CAs in the token, and written
with their CA certificates (EF ``000A``/``000B``, ``0001``/``0002``) in the issuer
domain's counter session; the old certificates are revoked ``renewed`` and the new ones
recorded, with the event ``certificates-renewed`` and the journal's ``done``, in one
transaction. An interrupted renewal is finished by running it again (`juki issue
recover`: new keys again, so nothing issued by the broken run certifies a key on a card).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from cardlib.constants import Aid, JpkiFile
from hsm.token import Hsm

from ..issuance.jpki_certs import (
    IssuedCertificate,
    JpkiSigners,
    issue_jpki_certificate,
    jpki_not_after,
)
from ..registry import Registry, RegistryError
from ..registry.events import Event
from ..registry.operations import CardOperation
from .card_session import CounterSession
from .operation import ResidentIdentity

OPERATION_KIND = "renew"
EVENT = "certificates-renewed"
KINDS = ("jpki-auth", "jpki-sign")
# kind -> (key EF, certificate EF, CA certificate EF) in the JPKI AP
FILES = {"jpki-auth": (JpkiFile.AUTH_KEY, JpkiFile.AUTH_CERT, JpkiFile.AUTH_CA_CERT),
         "jpki-sign": (JpkiFile.SIGN_KEY, JpkiFile.SIGN_CERT, JpkiFile.SIGN_CA_CERT)}


@dataclass(frozen=True)
class CertificateDue:
    """One JPKI certificate of the card as the registry has it, and whether it is due."""

    kind: str
    serial_number: str | None  # None: the card has no valid certificate of this kind
    not_after: dt.date | None
    due: bool
    expired: bool

    def as_json(self) -> dict[str, object]:
        return {"kind": self.kind, "serial_number": self.serial_number,
                "not_after": self.not_after.isoformat() if self.not_after else None,
                "due": self.due, "expired": self.expired}


@dataclass(frozen=True)
class RenewalPlan:
    card_serial: str
    today: dt.date
    window_days: int
    card_expiry: dt.date
    certificates: tuple[CertificateDue, ...]

    @property
    def horizon(self) -> dt.date:
        return self.today + dt.timedelta(days=self.window_days)


@dataclass(frozen=True)
class Renewed:
    card_serial: str
    revoked: tuple[str, ...]
    issued: tuple[dict[str, str], ...]  # kind, serial_number, not_after, issuer
    operation: int

    def as_json(self) -> dict[str, object]:
        return {"card_serial": self.card_serial, "revoked": list(self.revoked),
                "renewed": list(self.issued), "operation": self.operation}


def certificate_day(not_after: str) -> dt.date:
    """The last day (UTC) of a registry ``not_after`` (ISO date or datetime)."""
    return dt.datetime.fromisoformat(not_after).date()


def certificates_due(registry: Registry, card_serial: str, today: dt.date,
                     window_days: int) -> tuple[CertificateDue, ...]:
    """The card's current JPKI certificates, each marked due (within the window) and
    expired (before ``today``); a kind without a valid certificate is due."""
    horizon = today + dt.timedelta(days=window_days)
    found = []
    for kind in KINDS:
        record = registry.current_certificate(card_serial, kind)
        if record is None:
            found.append(CertificateDue(kind, None, None, True, False))
            continue
        day = certificate_day(record.not_after)
        found.append(CertificateDue(kind, record.serial_number, day, day <= horizon, day < today))
    return tuple(found)


def plan_renewal(registry: Registry, card_serial: str, window_days: int,
                 today: dt.date | None = None) -> RenewalPlan:
    """What a renewal of the card would do, or a ``RegistryError`` saying why it is
    refused: a card that is not active, a card that itself expires within the window
    (reissue it instead), nothing due within the window."""
    if window_days < 0:
        raise RegistryError(f"the renewal window must not be negative ({window_days} days)")
    day = today or dt.datetime.now(dt.UTC).date()
    card = registry.get(card_serial)
    if card is None:
        raise RegistryError(f"card {card_serial} is not in the registry")
    if card.status != "active":
        reason = f" ({card.status_reason})" if card.status_reason else ""
        raise RegistryError(f"card {card_serial} is {card.status}{reason}: only an active card's "
                            "certificates are renewed")
    if card.expiry is None:
        raise RegistryError(f"card {card_serial} has no expiry on record")
    expiry = dt.date.fromisoformat(card.expiry)
    horizon = day + dt.timedelta(days=window_days)
    if expiry <= horizon:
        raise RegistryError(f"card {card_serial} itself expires on {expiry}, within the "
                            f"{window_days}-day renewal window (until {horizon}): new "
                            "certificates would end with it; reissue the card")
    due = certificates_due(registry, card_serial, day, window_days)
    if not any(c.due for c in due):
        dates = ", ".join(f"{c.kind} until {c.not_after}" for c in due)
        raise RegistryError(f"nothing to renew on card {card_serial}: its certificates run "
                            f"beyond the {window_days}-day renewal window (until {horizon}): "
                            f"{dates}")
    return RenewalPlan(card_serial, day, window_days, expiry, due)


def _identity(registry: Registry, card_serial: str) -> tuple[ResidentIdentity, int]:
    """The 4 information and the kana name on record: the signature certificate's
    subjectAltName carries both, as at issuance (a bare ``FourInfo`` would drop the kana)."""
    card = registry.get(card_serial)
    identity = registry.identity_of(card.resident_id) if card and card.resident_id else None
    if card is None or card.resident_id is None or identity is None:
        raise RegistryError(f"card {card_serial}: no 4 information on record for its resident "
                            "(the signature certificate carries them)")
    return ResidentIdentity.from_row(identity), card.resident_id


def renew_certificates(channel, hsm: Hsm, registry: Registry,  # type: ignore[no-untyped-def]
                       plan: RenewalPlan, crl_base_url: str, owner: str | None) -> Renewed:
    """Carry out ``plan`` on the card on ``channel`` (already authenticated as
    ``plan.card_serial``): journal, both keys and certificates on the card, registry."""
    old = {c.kind: c.serial_number for c in plan.certificates if c.serial_number}
    _identity(registry, plan.card_serial)  # refused before the journal and any card write
    payload = {"old": old, "window_days": plan.window_days, "today": plan.today.isoformat()}
    operation = registry.begin_operation(plan.card_serial, OPERATION_KIND, payload, owner)
    return _run(channel, hsm, registry, plan.card_serial, operation, old, crl_base_url,
                plan.today)


def finish_interrupted_renewal(channel, hsm: Hsm, registry: Registry,  # type: ignore[no-untyped-def]
                               operation: CardOperation, crl_base_url: str,
                               today: dt.date | None = None) -> Renewed:
    """`juki issue recover` for an interrupted ``renew``: run it again on the card (new
    keys, new certificates) and commit; the old certificates are those it journalled."""
    if operation.kind != OPERATION_KIND:
        raise ValueError(f"operation {operation.id} is a {operation.kind}, not a {OPERATION_KIND}")
    old = {str(k): str(v) for k, v in dict(operation.payload.get("old", {})).items()}
    return _run(channel, hsm, registry, operation.card_serial, operation.id, old, crl_base_url,
                today or dt.datetime.now(dt.UTC).date())


def _run(channel, hsm: Hsm, registry: Registry, card_serial: str,  # type: ignore[no-untyped-def]
         operation: int, old: dict[str, str], crl_base_url: str, today: dt.date) -> Renewed:
    """The card steps, then one registry transaction; any failure on the way (the card,
    the token, the commit itself) leaves the operation ``interrupted`` for recover."""
    try:
        four, resident_id = _identity(registry, card_serial)
        card = registry.get(card_serial)
        assert card is not None and card.expiry is not None  # _identity found it
        issued = _on_card(channel, hsm, card_serial, four, dt.date.fromisoformat(card.expiry),
                          crl_base_url, today,
                          lambda certificate: _record(registry, card_serial, operation,
                                                      certificate))
        rows = tuple(_row(i) for i in issued)
        revoked = _commit(registry, card_serial, resident_id, operation, old, rows)
    except BaseException as exc:
        registry.interrupt_operation(operation, f"{type(exc).__name__}: {exc}")
        raise
    return Renewed(card_serial, tuple(revoked), rows, operation)


def _record(registry: Registry, card_serial: str, operation: int,
            issued: IssuedCertificate) -> None:
    """A new certificate is recorded (valid) before it is written to the card: a run
    interrupted after the write leaves no certificate the registry could not revoke."""
    with registry.transaction() as db:
        registry.record_certificate(db, issued, card_serial=card_serial)
        registry._log_event(db, Event("certificate-issued", OPERATION_KIND,
                                      card_serial=card_serial, detail={
                                          "kind": issued.kind,
                                          "serial_number": f"{issued.certificate.serial_number:x}",
                                          "operation": operation}))


def _commit(registry: Registry, card_serial: str, resident_id: int, operation: int,
            old: dict[str, str], rows: tuple[dict[str, str], ...]) -> list[str]:
    """The journalled old certificates revoked ``renewed``, any other JPKI certificate an
    interrupted run recorded revoked ``superseded`` (its key is gone from the card), the
    event and the journal's ``done``."""
    new = {row["serial_number"] for row in rows}
    with registry.transaction() as db:
        revoked = registry.revoke_certificates(db, reason="renewed", card_serial=card_serial,
                                               serial_numbers=tuple(old.values()))
        stale = tuple(c.serial_number for c in registry.certificates_of(
            card_serial=card_serial, status="valid")
            if c.kind in KINDS and c.serial_number not in new)
        if stale:
            revoked += registry.revoke_certificates(db, reason="superseded",
                                                    card_serial=card_serial,
                                                    serial_numbers=stale)
        registry._log_event(db, Event(EVENT, "renewed", card_serial=card_serial,
                                      resident_id=resident_id, detail=_detail(old, rows)))
        registry.settle_operation(db, operation, "done")
    return revoked


def _on_card(channel, hsm: Hsm, card_serial: str, four: ResidentIdentity,  # type: ignore[no-untyped-def]
             card_expiry: dt.date, crl_base_url: str, today: dt.date,
             record: Callable[[IssuedCertificate], None]) -> list[IssuedCertificate]:
    """Both keys generated again on the card, certified in the token, each certificate
    recorded (``record``) and then written with its CA certificate. Returns the
    ``IssuedCertificate`` of each kind."""
    signers = JpkiSigners.current(hsm)  # both CA keys found before any card write
    not_after = jpki_not_after(four.birth_date, today, card_expiry)
    issued = []
    with CounterSession.open(channel, hsm, card_serial) as session:
        for kind in KINDS:
            key_fid, cert_fid, ca_fid = FILES[kind]
            public_key = session.regenerate_key(Aid.JPKI.value, key_fid)
            certificate = issue_jpki_certificate(signers, kind, public_key, card_serial,
                                                 not_after,
                                                 four if kind == "jpki-sign" else None,
                                                 crl_base_url)
            record(certificate)
            session.rewrite_file(Aid.JPKI.value, cert_fid, _der(certificate.certificate))
            session.rewrite_file(Aid.JPKI.value, ca_fid, _der(signers.for_kind(kind).certificate))
            issued.append(certificate)
    return issued


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def _row(issued: IssuedCertificate) -> dict[str, str]:
    certificate: x509.Certificate = issued.certificate
    return {"kind": issued.kind, "serial_number": f"{certificate.serial_number:x}",
            "not_after": certificate.not_valid_after_utc.isoformat(),
            "issuer": f"{issued.issuer_role}-v{issued.issuer_version}"}


def _detail(old: dict[str, str], rows: tuple[dict[str, str], ...]) -> dict[str, str]:
    detail = {f"old_{kind.replace('-', '_')}": serial for kind, serial in old.items()}
    for row in rows:
        key = row["kind"].replace("-", "_")
        detail[f"new_{key}"] = row["serial_number"]
        detail[f"{key}_not_after"] = row["not_after"]
    return detail


def coming_due(registry: Registry, days: int,
               now: dt.datetime | None = None) -> dict[str, list[dict[str, object]]]:
    """`card list --expiring DAYS`: for each live card (active or suspended) whose own
    expiry or any valid certificate's last day falls on or before today + DAYS (or has
    passed), what is due and when. The same days as ``plan_renewal``'s window: what
    `card renew --window DAYS` finds due is listed here."""
    moment = now or dt.datetime.now(dt.UTC)
    horizon = moment.date() + dt.timedelta(days=days)  # the last day counted
    before = dt.datetime.combine(horizon + dt.timedelta(days=1), dt.time(), dt.UTC)
    due: dict[str, list[dict[str, object]]] = {}
    live = {c.serial: c for c in registry.list() if c.status in ("active", "suspended")}
    for card in live.values():
        if card.expiry is not None and dt.date.fromisoformat(card.expiry) <= horizon:
            due.setdefault(card.serial, []).append(
                {"what": "card", "serial_number": None, "not_after": card.expiry,
                 "expired": dt.date.fromisoformat(card.expiry) < moment.date()})
    for record in registry.certificates_expiring(before):
        if record.card_serial not in live or record.kind not in ("card", *KINDS):
            continue
        not_after = dt.datetime.fromisoformat(record.not_after)
        if not_after.tzinfo is None:
            not_after = not_after.replace(tzinfo=dt.UTC)
        due.setdefault(record.card_serial, []).append(
            {"what": record.kind, "serial_number": record.serial_number,
             "not_after": record.not_after, "expired": not_after < moment})
    return due
