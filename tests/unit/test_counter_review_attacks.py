"""Security review of issue 13: attacks on the counter work that the parts' own tests did
not try. Each test is the regression test of a hole found (and fixed), or an attack
that is refused and adds coverage."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from hsm.roles import KeyRole
from tools.pki import crl as crl_module
from tools.registry import Registry

from .test_registry_certificates import issue

CA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
CA_NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Juki Resident Signature CA")])


def _ca_certificate() -> x509.Certificate:
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    return (x509.CertificateBuilder().subject_name(CA_NAME).issuer_name(CA_NAME)
            .public_key(CA_KEY.public_key()).serial_number(1)
            .not_valid_before(start).not_valid_after(start + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(CA_KEY, hashes.SHA256()))


@pytest.fixture
def local_ca(monkeypatch: pytest.MonkeyPatch) -> x509.Certificate:
    """build_crl with its CA key in memory instead of the token."""
    ca = _ca_certificate()
    monkeypatch.setattr(crl_module, "certificates_by_version", lambda hsm, role: {1: ca})
    monkeypatch.setattr(crl_module, "TokenRsaSigner", lambda hsm, role, version: CA_KEY)
    return ca


def _number(crl: x509.CertificateRevocationList) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def test_a_higher_crl_number_never_lists_less(registry: Registry, local_ca,  # type: ignore[no-untyped-def]
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Two stations publish at once while a certificate is revoked. Station A's build_crl
    read what to list, then station B revoked the signature certificate and published
    (its CRL lists it), then A took its number. Were A's list read outside the
    transaction of its number, A's CRL would carry the HIGHER number without the
    revoked certificate, and a relying party (which takes the newest CRL) would accept
    it. The list and the number are one snapshot under the registry's write lock."""
    serial = "A0000000000000000001"
    sign = issue(registry, serial)[2]
    published: list[x509.CertificateRevocationList] = []
    hooked = {"done": False}

    def station_b() -> None:
        with registry.transaction() as db:
            registry.revoke_certificates(db, reason="four-info-changed", card_serial=serial,
                                         kinds=("jpki-sign",))
        published.append(crl_module.build_crl(None, registry, KeyRole.RESIDENT_SIGN_CA, 1,  # type: ignore[arg-type]
                                              dt.timedelta(hours=1)))

    for name in ("revoked_under", "next_crl_number", "crl_snapshot"):
        original = getattr(registry, name, None)
        if original is None:
            continue

        def hooked_call(*args, _original=original, **kwargs):  # type: ignore[no-untyped-def]
            result = _original(*args, **kwargs)
            if not hooked["done"]:  # station B runs between A's first read and the rest
                hooked["done"] = True
                station_b()
            return result

        monkeypatch.setattr(registry, name, hooked_call)
    a = crl_module.build_crl(None, registry, KeyRole.RESIDENT_SIGN_CA, 1,  # type: ignore[arg-type]
                             dt.timedelta(hours=1))
    b = published[0]
    newest = max((a, b), key=_number)
    assert _number(a) != _number(b)
    assert newest.get_revoked_certificate_by_serial_number(
        sign.certificate.serial_number) is not None, "the newest CRL omits a revoked certificate"
