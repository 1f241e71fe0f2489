"""The certificate registry (issue 13 §5): every certificate recorded with its card or
operator, the card's status followed (revoked, hold, released) with an event each, and
CRL numbers strictly increasing, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.helpers import KeptEvents, resident_certificates, self_signed_certificate
from tools.pki.issued import IssuedCertificate as Issued
from tools.registry import Registry, RegistryError, new_record_code

EXPIRY = dt.date(2036, 1, 1)


def certificate(days: int = 365) -> x509.Certificate:
    """Valid for ``days`` days from two days ago."""
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    return self_signed_certificate(start, start + dt.timedelta(days=days))


def issue(registry: Registry, serial: str, *extra: Issued) -> list[Issued]:
    certificates = [*resident_certificates(certificate(), certificate(), certificate()), *extra]
    registry.begin_issuance(serial, "resident", new_record_code(), "131016", EXPIRY)
    registry.complete_issuance(serial, b"cert", certificates=certificates)
    return certificates


def hexes(certs: list[Issued]) -> list[str]:
    """Serial numbers as the registry lists them: lower-case hex, in order (same second)."""
    return sorted(f"{c.certificate.serial_number:x}" for c in certs)


def by_kind(registry: Registry, serial: str) -> dict[str, object]:
    return {r.kind: r for r in registry.certificates_of(card_serial=serial)}


def test_issuance_records_every_certificate_in_its_transaction(registry: Registry) -> None:
    issued = issue(registry, "100000000000001")
    records = by_kind(registry, "100000000000001")
    assert {k: (r.serial_number, r.issuer_role, r.issuer_version, r.status)  # type: ignore[attr-defined]
            for k, r in records.items()} == {
        i.kind: (f"{i.certificate.serial_number:x}", i.issuer_role, 1, "valid") for i in issued}
    auth = records["jpki-auth"]
    assert auth.der == issued[1].certificate.public_bytes(Encoding.DER)  # type: ignore[attr-defined]
    assert auth.certificate() == issued[1].certificate  # type: ignore[attr-defined]
    current = registry.current_certificate("100000000000001", "jpki-sign")
    assert current is not None and current.serial_number == f"{issued[2].certificate.serial_number:x}"
    assert registry.revoked_under("resident-issuing-ca", 1) == []


def test_a_failed_completion_records_nothing(registry: Registry) -> None:
    registry.begin_issuance("100000000000001", "resident", new_record_code(), "131016", EXPIRY)
    bad = Issued("nonsense", certificate(), "resident-issuing-ca", 1)
    with pytest.raises(RegistryError, match="kind must be one of"):
        registry.complete_issuance("100000000000001", b"cert", certificates=[bad])
    assert registry.get("100000000000001").status == "issuing"
    assert registry.certificates_of(card_serial="100000000000001") == []


def test_card_status_is_followed_with_events(registry: Registry) -> None:
    sink = KeptEvents()
    registry.event_sink = sink
    issued = issue(registry, "100000000000001")
    registry.set_status("100000000000001", "suspended", "investigation")
    assert {r.status for r in registry.certificates_of(card_serial="100000000000001")} == {"hold"}
    listed = registry.revoked_under("resident-issuing-ca", 1)
    assert [r.serial_number for r in listed] == hexes(issued[:2])
    assert {r.reason for r in listed} == {"hold"} and all(r.revoked_at for r in listed)
    registry.set_status("100000000000001", "active")
    assert {r.status for r in registry.certificates_of(card_serial="100000000000001")} == {"valid"}
    assert registry.revoked_under("resident-issuing-ca", 1) == []
    registry.set_status("100000000000001", "revoked", "lost")
    records = registry.certificates_of(card_serial="100000000000001", status="revoked")
    assert len(records) == 3 and {r.reason for r in records} == {"lost"}
    assert registry.current_certificate("100000000000001", "jpki-auth") is None
    events = [(e.event, e.reason, e.detail.get("serial_numbers")) for e in sink.committed
              if e.event.startswith("certificate-")]
    every = ",".join(hexes(issued))
    assert events == [("certificate-held", "hold", every), ("certificate-released", None, every),
                      ("certificate-revoked", "lost", every)]


def test_a_superseded_card_has_its_certificates_revoked(registry: Registry) -> None:
    old = issue(registry, "100000000000001")
    code = registry.get("100000000000001").resident_code
    registry.begin_issuance("100000000000002", "resident", code, "131016", EXPIRY,
                            reissue_of="100000000000001")
    registry.complete_issuance("100000000000002", b"cert", supersedes="100000000000001",
                               certificates=[Issued("card", certificate(), "resident-issuing-ca", 1)])
    revoked = registry.revoked_under("resident-issuing-ca", 1)
    assert sorted(r.serial_number for r in revoked) == hexes(old[:2])
    assert {r.reason for r in revoked} == {"superseded"}


def test_revoke_by_kind_and_reason_rules(registry: Registry) -> None:
    issued = issue(registry, "100000000000001")
    with registry.transaction() as db:
        with pytest.raises(RegistryError, match="reason must be one of"):
            registry.revoke_certificates(db, reason="bored", card_serial="100000000000001")
        with pytest.raises(RegistryError, match="name a card"):
            registry.revoke_certificates(db, reason="lost")
        done = registry.revoke_certificates(db, reason="four-info-changed",
                                            card_serial="100000000000001", kinds=("jpki-sign",))
        again = registry.revoke_certificates(db, reason="four-info-changed",
                                             card_serial="100000000000001", kinds=("jpki-sign",))
    assert done == hexes(issued[2:]) and again == []
    assert [r.reason for r in registry.revoked_under("resident-sign-ca", 1)] == ["four-info-changed"]
    assert registry.certificate(hexes(issued[:1])[0]).status == "valid"


def test_expired_certificates_leave_the_crl_and_expiring_lists(registry: Registry) -> None:
    short = Issued("jpki-auth", certificate(days=1), "resident-issuing-ca", 1)  # ended yesterday
    issue(registry, "100000000000001", short)
    registry.set_status("100000000000001", "revoked", "stolen")
    listed = {r.serial_number for r in registry.revoked_under("resident-issuing-ca", 1)}
    assert f"{short.certificate.serial_number:x}" not in listed and len(listed) == 2
    issue(registry, "100000000000002")
    soon = registry.certificates_expiring(dt.datetime.now(dt.UTC) + dt.timedelta(days=400))
    assert {r.card_serial for r in soon} == {"100000000000002"}
    assert registry.certificates_expiring(dt.datetime.now(dt.UTC)) == []


def test_operator_certificates_revoked_with_the_operator(registry: Registry) -> None:
    registry.begin_enrolment("op1", "Op", "131016", frozenset({"verify"}), None, "AB" * 16, None)
    certs = (Issued("operator", certificate(), "operator-ca", 1),
             Issued("operator", certificate(), "operator-ca", 1))
    registry.complete_enrolment("op1", b"der", "admin", certs)
    assert len(registry.certificates_of(operator_id="op1", status="valid")) == 2
    registry.set_operator_status("op1", "revoked", "left the municipality", "admin")
    revoked = registry.revoked_under("operator-ca", 1)
    assert [r.reason for r in revoked] == ["returned", "returned"]
    assert {r.operator_id for r in revoked} == {"op1"}


def test_crl_numbers_strictly_increase_per_ca_version(registry: Registry) -> None:
    assert [registry.next_crl_number("resident-issuing-ca", 1) for _ in range(3)] == [1, 2, 3]
    assert registry.next_crl_number("resident-issuing-ca", 2) == 1
    assert registry.next_crl_number("resident-sign-ca", 1) == 1
    assert registry.next_crl_number("resident-issuing-ca", 1) == 4


def test_crl_numbers_are_unique_across_connections(registry: Registry, tmp_path: Path) -> None:
    """Two stations on one registry (two connections, threads racing): no number twice."""
    target = registry.location
    numbers: list[int] = []
    lock = threading.Lock()

    def station() -> None:
        own = Registry(target)
        try:
            for _ in range(10):
                number = own.next_crl_number("resident-issuing-ca", 1)
                with lock:
                    numbers.append(number)
        finally:
            own.close()

    threads = [threading.Thread(target=station) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(numbers) == list(range(1, 31))
