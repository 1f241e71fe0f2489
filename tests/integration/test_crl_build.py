"""build_crl / publish_crls against the rig's token (issue 13 §5): each CRL signed by its
CA version's key in the token, with its AKI, a CRL number above the last, reason codes,
and a crl-published event per CRL committed with the number."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509

from hsm.ca import certificates_by_version
from hsm.roles import KeyRole
from tests.conftest import direct_registry_target
from tests.helpers import KeptEvents
from tools.pki.crl import build_crl, publish_crls
from tools.registry import Registry


def test_crls_are_signed_in_the_token_and_numbered_upwards(station) -> None:  # type: ignore[no-untyped-def]
    registry = Registry(direct_registry_target(station.home.root))
    sink = KeptEvents()
    registry.event_sink = sink
    written: dict[str, bytes] = {}
    try:
        first = publish_crls(station.hsm, registry, dt.timedelta(hours=2), written.__setitem__)
        second = publish_crls(station.hsm, registry, dt.timedelta(hours=2), written.__setitem__)
    finally:
        registry.close()
    roles = {(p.role, p.version) for p in first}
    assert {("resident-issuing-ca", 1), ("resident-sign-ca", 1), ("operator-ca", 1)} <= roles
    for before, after in zip(first, second, strict=True):
        assert after.number > before.number
        crl = x509.load_der_x509_crl(written[after.files[0]])
        assert x509.load_pem_x509_crl(written[after.files[1]]) == crl
        ca = certificates_by_version(station.hsm, KeyRole(after.role))[after.version]
        assert crl.issuer == ca.subject and crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
        aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        assert aki.key_identifier == x509.SubjectKeyIdentifier.from_public_key(
            ca.public_key()).digest  # type: ignore[arg-type]
        assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == after.number
        assert crl.next_update_utc - crl.last_update_utc == dt.timedelta(hours=2)  # type: ignore[operator]
    events = [e for e in sink.committed if e.event == "crl-published"]
    assert [(e.detail["role"], e.detail["version"], e.detail["number"]) for e in events] == [
        (p.role, p.version, p.number) for p in first + second]


def test_build_crl_refuses_a_missing_ca_version_and_a_silly_next_update(station) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="no resident-sign-ca v99"):
        build_crl(station.hsm, station.registry, KeyRole.RESIDENT_SIGN_CA, 99,
                  dt.timedelta(hours=1))
    with pytest.raises(ValueError, match="next update"):
        build_crl(station.hsm, station.registry, KeyRole.RESIDENT_SIGN_CA, 1,
                  dt.timedelta(days=90))
