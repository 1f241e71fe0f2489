"""Regression: `card list --expiring DAYS` left out a card or certificate whose last day
is today + DAYS (the card by a strict ``<``, a certificate ending that evening by comparing
with this very moment + DAYS), while `card renew --window DAYS` counts that day as within
the window: the list must show what renewal finds due."""

from __future__ import annotations

import datetime as dt

from cryptography import x509

from tests.helpers import resident_certificates, self_signed_certificate
from tools.counter.renewal import coming_due, plan_renewal
from tools.registry import Registry, new_record_code

NOW = dt.datetime.now(dt.UTC).replace(hour=9, minute=0, second=0, microsecond=0)
TODAY = NOW.date()


def certificate(last_day: dt.date) -> x509.Certificate:
    return self_signed_certificate(
        dt.datetime.combine(last_day - dt.timedelta(days=1000), dt.time(), dt.UTC),
        dt.datetime.combine(last_day, dt.time(23, 59, 59), dt.UTC))


def issue(registry: Registry, serial: str, expiry: dt.date, auth: dt.date, sign: dt.date) -> None:
    registry.begin_issuance(serial, "resident", new_record_code(), "131016", expiry)
    registry.complete_issuance(serial, b"cert", certificates=resident_certificates(
        certificate(expiry), certificate(auth), certificate(sign)))


def test_the_last_day_of_the_window_is_listed_like_renewal_counts_it(registry: Registry) -> None:
    edge = TODAY + dt.timedelta(days=30)
    issue(registry, "200000000000101", TODAY + dt.timedelta(days=3000), edge,
          TODAY + dt.timedelta(days=1500))
    assert [c.kind for c in plan_renewal(registry, "200000000000101", 30, TODAY).certificates
            if c.due] == ["jpki-auth"]
    due = coming_due(registry, 30, NOW)
    assert [(d["what"], d["expired"]) for d in due["200000000000101"]] == [("jpki-auth", False)]
    assert "200000000000101" not in coming_due(registry, 29, NOW)


def test_a_card_expiring_on_the_last_day_of_the_window_is_listed(registry: Registry) -> None:
    edge = TODAY + dt.timedelta(days=30)
    issue(registry, "200000000000102", edge, TODAY + dt.timedelta(days=10),
          TODAY + dt.timedelta(days=10))
    due = coming_due(registry, 30, NOW)
    assert {"what": "card", "serial_number": None, "not_after": edge.isoformat(),
            "expired": False} in due["200000000000102"]
    assert {d["what"] for d in coming_due(registry, 29, NOW)["200000000000102"]} == {
        "jpki-auth", "jpki-sign"}
