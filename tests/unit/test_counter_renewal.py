"""Renewal and expiry from the registry (issue 13 §4), on SQLite and PostgreSQL: what is
due within a window, the refusals (nothing due, the card itself expiring, a card that is
not active), `card list --expiring` and the verifier's certificate report. Time travel
by certificates made with short or past validity, never by sleeping."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509

from tests.helpers import resident_certificates, self_signed_certificate
from tools.counter.renewal import certificates_due, coming_due, plan_renewal
from tools.registry import Registry, RegistryError, new_record_code
from tools.resident.verifier import certificate_report

TODAY = dt.datetime.now(dt.UTC).date()


def certificate(last_day: dt.date) -> x509.Certificate:
    """Valid for 1000 days up to the end of ``last_day``."""
    return self_signed_certificate(
        dt.datetime.combine(last_day - dt.timedelta(days=1000), dt.time(), dt.UTC),
        dt.datetime.combine(last_day, dt.time(23, 59, 59), dt.UTC))


def issue(registry: Registry, serial: str, expiry: dt.date, auth: dt.date,
          sign: dt.date) -> dict[str, str]:
    certificates = resident_certificates(certificate(expiry), certificate(auth), certificate(sign))
    registry.begin_issuance(serial, "resident", new_record_code(), "131016", expiry)
    registry.complete_issuance(serial, b"cert", certificates=certificates)
    return {i.kind: f"{i.certificate.serial_number:x}" for i in certificates}


def days(n: int) -> dt.date:
    return TODAY + dt.timedelta(days=n)


def test_nothing_due_is_refused_naming_the_window_and_the_dates(registry: Registry) -> None:
    issue(registry, "200000000000001", days(3000), days(1500), days(1500))
    with pytest.raises(RegistryError) as info:
        plan_renewal(registry, "200000000000001", 90, TODAY)
    message = str(info.value)
    assert "nothing to renew" in message and "90-day renewal window" in message
    assert f"until {days(90)}" in message
    assert f"jpki-auth until {days(1500)}" in message and f"jpki-sign until {days(1500)}" in message


def test_due_within_the_window_or_expired(registry: Registry) -> None:
    serials = issue(registry, "200000000000002", days(3000), days(60), days(-3))
    plan = plan_renewal(registry, "200000000000002", 90, TODAY)
    due = {c.kind: c for c in plan.certificates}
    assert due["jpki-auth"].due and not due["jpki-auth"].expired
    assert due["jpki-sign"].due and due["jpki-sign"].expired
    assert due["jpki-auth"].serial_number == serials["jpki-auth"]
    assert due["jpki-auth"].not_after == days(60)
    # the window is the operator's: 30 days does not reach the auth certificate
    narrow = {c.kind: c.due for c in certificates_due(registry, "200000000000002", TODAY, 30)}
    assert narrow == {"jpki-auth": False, "jpki-sign": True}


def test_a_card_expiring_within_the_window_is_to_be_reissued(registry: Registry) -> None:
    issue(registry, "200000000000003", days(80), days(40), days(40))
    with pytest.raises(RegistryError, match=f"itself expires on {days(80)}, within the 90-day "
                                            "renewal window .*reissue the card"):
        plan_renewal(registry, "200000000000003", 90, TODAY)
    assert plan_renewal(registry, "200000000000003", 60, TODAY).window_days == 60


@pytest.mark.parametrize("status, reason", [("suspended", "reported missing"),
                                            ("revoked", "lost")])
def test_only_an_active_card_is_renewed(registry: Registry, status: str, reason: str) -> None:
    issue(registry, "200000000000004", days(3000), days(10), days(10))
    registry.set_status("200000000000004", status, reason)
    with pytest.raises(RegistryError, match=f"is {status} \\({reason}\\): only an active card"):
        plan_renewal(registry, "200000000000004", 90, TODAY)


def test_an_expired_card_is_not_renewed(registry: Registry) -> None:
    issue(registry, "200000000000005", days(-1), days(-1), days(-1))
    registry.expire_due()
    with pytest.raises(RegistryError, match="is expired \\(past expiry\\)"):
        plan_renewal(registry, "200000000000005", 90, TODAY)
    with pytest.raises(RegistryError, match="must not be negative"):
        plan_renewal(registry, "200000000000005", -1, TODAY)


def test_card_list_expiring_says_what_is_due_and_when(registry: Registry) -> None:
    late = issue(registry, "200000000000006", days(3000), days(1500), days(1500))
    soon = issue(registry, "200000000000007", days(3000), days(20), days(1500))
    issue(registry, "200000000000008", days(25), days(25), days(25))
    gone = issue(registry, "200000000000009", days(3000), days(-5), days(1500))
    due = coming_due(registry, 30)
    assert set(due) == {"200000000000007", "200000000000008", "200000000000009"}
    assert [(d["what"], d["serial_number"], d["expired"]) for d in due["200000000000007"]] == [
        ("jpki-auth", soon["jpki-auth"], False)]
    assert {d["what"] for d in due["200000000000008"]} == {"card", "jpki-auth", "jpki-sign"}
    assert due["200000000000008"][0] == {"what": "card", "serial_number": None,
                                         "not_after": days(25).isoformat(), "expired": False}
    assert [(d["what"], d["expired"]) for d in due["200000000000009"]] == [("jpki-auth", True)]
    assert "200000000000006" in coming_due(registry, 1600) and late
    assert gone and coming_due(registry, 0).keys() == {"200000000000009"}
    # a revoked card is no longer coming due
    registry.set_status("200000000000007", "revoked", "lost")
    assert "200000000000007" not in coming_due(registry, 30)


def test_the_verifier_reports_each_certificate_with_its_own_expiry(registry: Registry) -> None:
    serials = issue(registry, "200000000000010", days(3000), days(-2), days(400))
    report = {r["kind"]: r for r in certificate_report(registry, "200000000000010")}
    assert set(report) == {"card", "jpki-auth", "jpki-sign"}
    assert report["jpki-auth"]["expired"] is True and report["jpki-sign"]["expired"] is False
    assert report["card"]["expired"] is False
    assert report["jpki-auth"]["serial_number"] == serials["jpki-auth"]
    assert report["jpki-auth"]["status"] == "valid"
    assert report["jpki-auth"]["not_after"].startswith(days(-2).isoformat())
    # a revoked certificate is still reported (the newest of its kind), with its status
    with registry.transaction() as db:
        registry.revoke_certificates(db, reason="renewed", serial_numbers=[serials["jpki-sign"]])
    report = {r["kind"]: r for r in certificate_report(registry, "200000000000010")}
    assert report["jpki-sign"]["status"] == "revoked"
