"""Every certificate the token's CAs issued (card, JPKI auth and sign, operator), with
its revocation state, for the CRLs (``tools.pki.crl``) and the counter's work.

A certificate is ``valid``, on ``hold`` (its card suspended: CRL reason
certificateHold, lifted when the card is resumed) or ``revoked`` (for good, with one of
``CERTIFICATE_REVOKE_REASONS``). Each change commits inside the caller's transaction
with its event (``certificate-revoked``, ``-held``, ``-released``) naming the serial
numbers. CRL numbers are handed out under the registry's write lock, so they strictly
increase per CA version even with several stations on one PostgreSQL registry.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .backend import Backend
from .events import Event
from .records import RegistryError, Row, now
from .schema import CERTIFICATE_KINDS, CERTIFICATE_REVOKE_REASONS


class IssuedLike(Protocol):
    """``tools.pki.issued.IssuedCertificate`` (above the registry, so only its shape)."""

    kind: str
    certificate: x509.Certificate
    issuer_role: str
    issuer_version: int


@dataclass(frozen=True)
class CertificateRecord(Row):
    serial_number: str  # lower-case hex, no leading zeros
    issuer_role: str
    issuer_version: int
    kind: str
    card_serial: str | None
    operator_id: str | None
    not_after: str  # ISO 8601 UTC
    status: str  # valid | hold | revoked
    reason: str | None
    revoked_at: str | None
    issued_at: str
    der: bytes

    def as_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "der"}

    def certificate(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.der)


_COLUMNS = ", ".join(f.name for f in fields(CertificateRecord))


def serial_hex(serial_number: int) -> str:
    return f"{serial_number:x}"


def _record(row: tuple[Any, ...]) -> CertificateRecord:
    values = list(row)
    values[2] = int(values[2])
    values[11] = bytes(values[11])
    return CertificateRecord(*values)


class CertificateStore:
    """Mixed into ``Registry``: needs ``_db``, ``transaction()`` and ``_log_event``."""

    _db: Backend

    def _log_event(self, db: Backend, event: Event) -> None:  # pragma: no cover - Registry's
        raise NotImplementedError

    # ---- writing (inside the caller's transaction) -----------------------------------------

    def record_certificate(self, db: Backend, issued: IssuedLike, card_serial: str | None = None,
                           operator_id: str | None = None) -> None:
        if issued.kind not in CERTIFICATE_KINDS:
            raise RegistryError(f"certificate kind must be one of {', '.join(CERTIFICATE_KINDS)}")
        certificate = issued.certificate
        db.execute(
            f"INSERT INTO certificates ({_COLUMNS}) VALUES "
            "(?, ?, ?, ?, ?, ?, ?, 'valid', NULL, NULL, ?, ?)",
            (serial_hex(certificate.serial_number), issued.issuer_role, issued.issuer_version,
             issued.kind, card_serial, operator_id,
             certificate.not_valid_after_utc.isoformat(timespec="seconds"), now(),
             certificate.public_bytes(serialization.Encoding.DER)))

    def _select_serials(self, db: Backend, statuses: tuple[str, ...], card_serial: str | None,
                        operator_id: str | None, kinds: tuple[str, ...] | None,
                        serial_numbers: tuple[str, ...] | None) -> list[str]:
        where = [f"status IN ({', '.join('?' for _ in statuses)})"]
        args: list[Any] = list(statuses)
        for column, value in (("card_serial", card_serial), ("operator_id", operator_id)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        for column, values in (("kind", kinds), ("serial_number", serial_numbers)):
            if values is not None:
                if not values:
                    return []
                where.append(f"{column} IN ({', '.join('?' for _ in values)})")
                args.extend(values)
        rows = db.execute(f"SELECT serial_number FROM certificates WHERE {' AND '.join(where)} "
                          "ORDER BY issued_at, serial_number", tuple(args)).fetchall()
        return [str(r[0]) for r in rows]

    def _set_status(self, db: Backend, serials: list[str], status: str, reason: str | None,
                    event: str, card_serial: str | None, operator_id: str | None) -> None:
        if not serials:
            return
        stamp = now() if status != "valid" else None
        db.executemany("UPDATE certificates SET status = ?, reason = ?, revoked_at = ? "
                       "WHERE serial_number = ?", [(status, reason, stamp, s) for s in serials])
        self._log_event(db, Event(event, reason, card_serial=card_serial,
                                  subject_operator=operator_id,
                                  detail={"serial_numbers": ",".join(serials),
                                          "count": len(serials)}))

    def revoke_certificates(self, db: Backend, *, reason: str, card_serial: str | None = None,
                            operator_id: str | None = None, kinds: tuple[str, ...] | None = None,
                            serial_numbers: tuple[str, ...] | None = None) -> list[str]:
        """``valid``/``hold`` → ``revoked`` with ``reason``; returns their serial numbers."""
        if reason not in CERTIFICATE_REVOKE_REASONS:
            raise RegistryError(f"certificate revocation reason must be one of "
                                f"{', '.join(CERTIFICATE_REVOKE_REASONS)}")
        if card_serial is None and operator_id is None and serial_numbers is None:
            raise RegistryError("revoke which certificates? name a card, an operator or serials")
        serials = self._select_serials(db, ("valid", "hold"), card_serial, operator_id,
                                       tuple(kinds) if kinds is not None else None,
                                       tuple(serial_numbers) if serial_numbers is not None
                                       else None)
        self._set_status(db, serials, "revoked", reason, "certificate-revoked", card_serial,
                         operator_id)
        return serials

    def hold_certificates(self, db: Backend, card_serial: str) -> list[str]:
        """The card is suspended: its valid certificates on hold (certificateHold)."""
        serials = self._select_serials(db, ("valid",), card_serial, None, None, None)
        self._set_status(db, serials, "hold", "hold", "certificate-held", card_serial, None)
        return serials

    def release_certificates(self, db: Backend, card_serial: str) -> list[str]:
        """The card is resumed: its certificates on hold are valid again (off the CRL)."""
        serials = self._select_serials(db, ("hold",), card_serial, None, None, None)
        self._set_status(db, serials, "valid", None, "certificate-released", card_serial, None)
        return serials

    # ---- reading ---------------------------------------------------------------------------

    def certificates_of(self, card_serial: str | None = None, operator_id: str | None = None,
                        status: str | None = None) -> list[CertificateRecord]:
        where, args = [], []
        for column, value in (("card_serial", card_serial), ("operator_id", operator_id),
                              ("status", status)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM certificates{clause} "
                                "ORDER BY issued_at, serial_number", tuple(args))
        return [_record(r) for r in rows]

    def certificate(self, serial_number: str) -> CertificateRecord | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM certificates WHERE serial_number = ?",
                               (serial_number.lower(),)).fetchone()
        return _record(row) if row else None

    def current_certificate(self, card_serial: str, kind: str) -> CertificateRecord | None:
        """The card's newest ``valid`` or ``hold`` certificate of ``kind``."""
        row = self._db.execute(f"SELECT {_COLUMNS} FROM certificates WHERE card_serial = ? AND "
                               "kind = ? AND status IN ('valid', 'hold') "
                               "ORDER BY issued_at DESC, serial_number DESC LIMIT 1",
                               (card_serial, kind)).fetchone()
        return _record(row) if row else None

    def revoked_under(self, issuer_role: str, issuer_version: int) -> list[CertificateRecord]:
        """What the CRL of one CA version lists: revoked or on hold, not yet expired."""
        return _revoked_under(self._db, issuer_role, issuer_version)

    def certificates_expiring(self, before: dt.datetime) -> list[CertificateRecord]:
        """``valid`` certificates whose not-after falls before ``before`` (UTC)."""
        stamp = before.astimezone(dt.UTC).isoformat(timespec="seconds")
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM certificates WHERE status = 'valid' AND "
                                "not_after < ? ORDER BY not_after, serial_number", (stamp,))
        return [_record(r) for r in rows]

    def next_crl_number(self, issuer_role: str, issuer_version: int) -> int:
        """The next CRL number of one CA version (1, 2, …), in a write transaction of its
        own: strictly increasing, also across stations sharing the registry."""
        with self.transaction() as db:  # type: ignore[attr-defined]
            return _next_crl_number(db, issuer_role, issuer_version)

    def crl_snapshot(self, issuer_role: str, issuer_version: int
                     ) -> tuple[int, list[CertificateRecord]]:
        """The next CRL number of one CA version and what that CRL lists, read in ONE
        write transaction: under the registry's write lock, a higher number never lists
        less than a lower one (read apart, a publish racing a revocation on another
        station could give the newest CRL an older list, and a relying party takes the
        newest)."""
        with self.transaction() as db:  # type: ignore[attr-defined]
            number = _next_crl_number(db, issuer_role, issuer_version)
            return number, _revoked_under(db, issuer_role, issuer_version)


def _revoked_under(db: Backend, issuer_role: str, issuer_version: int) -> list[CertificateRecord]:
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM certificates WHERE issuer_role = ? AND issuer_version = ? "
        "AND status IN ('revoked', 'hold') AND not_after >= ? ORDER BY revoked_at, "
        "serial_number", (issuer_role, issuer_version, now()))
    return [_record(r) for r in rows]


def _next_crl_number(db: Backend, issuer_role: str, issuer_version: int) -> int:
    row = db.execute("SELECT number FROM crl_numbers WHERE issuer_role = ? AND "
                     "issuer_version = ?", (issuer_role, issuer_version)).fetchone()
    number = int(row[0]) + 1 if row else 1
    if row:
        db.execute("UPDATE crl_numbers SET number = ? WHERE issuer_role = ? AND "
                   "issuer_version = ?", (number, issuer_role, issuer_version))
    else:
        db.execute("INSERT INTO crl_numbers (issuer_role, issuer_version, number) "
                   "VALUES (?, ?, ?)", (issuer_role, issuer_version, number))
    return number
