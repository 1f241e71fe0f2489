"""Regression: a renewed JPKI signature certificate carries the kana name like the one
issued with the card (subjectAltName otherName 1.2.392.200149.8.5.5.2). Renewal once
certified the new key with a bare ``FourInfo``, which has no kana, and dropped it."""

from __future__ import annotations

from cryptography import x509

from cardlib import tlv
from cardlib.apps.jpki import JpkiApSession, JpkiKey
from tools.counter.renewal import plan_renewal, renew_certificates
from tools.issuance.jpki_certs import JPKI_OTHER_NAME_ARC, UTF8_STRING
from tools.issuance.recovery import this_process

from .counter_cards import BASE, PINS, channel, issued_card
from .test_counter_faults import pooled_card_keys  # noqa: F401 (the module's key pool)

KANA_OID = f"{JPKI_OTHER_NAME_ARC}.2"


def kana_of(certificate: x509.Certificate) -> bytes | None:
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    found = [n.value for n in names.get_values_for_type(x509.OtherName)
             if n.type_id.dotted_string == KANA_OID]
    return found[0] if found else None


def sign_certificate(card) -> x509.Certificate:  # type: ignore[no-untyped-def]
    jpki = JpkiApSession(channel(card))
    jpki.select()
    jpki.verify_key_pin(JpkiKey.SIGN, PINS.jpki_sign.reveal())
    return jpki.read_certificate("sign")


def test_renewal_keeps_the_kana_name_in_the_signature_certificate(station) -> None:  # type: ignore[no-untyped-def]
    assert BASE.name_kana
    expected = tlv.Tlv(UTF8_STRING, BASE.name_kana.encode()).encode()
    card, _code = issued_card(station)
    serial = card.state.serial
    before = sign_certificate(card)
    assert kana_of(before) == expected
    plan = plan_renewal(station.registry, serial, 5 * 366)
    renew_certificates(channel(card), station.hsm, station.registry, plan,
                       "http://crl.juki.invalid", this_process())
    after = sign_certificate(card)
    assert after.serial_number != before.serial_number
    assert kana_of(after) == expected
