"""The relying party's checks (issue 13 §5) in memory: CA certificates and CRLs only.
Each attack on the CRL check is refused, naming what was wrong; garbage input files are a
clear error (hypothesis), never a crash; the registry's reasons map to CRL reason codes."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from tools.pki.crl import CRL_REASONS, crl_reason
from tools.registry.schema import CERTIFICATE_REVOKE_REASONS
from tools.resident.relying_party import RelyingParty, RelyingPartyInputError

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
SERIAL = "123456789012345"


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


CA_KEY, OTHER_KEY, CARD_KEY = _key(), _key(), _key()


def name(common: str, serial: str | None = None) -> x509.Name:
    parts = [x509.NameAttribute(NameOID.COMMON_NAME, common)]
    if serial:
        parts.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, serial))
    return x509.Name(parts)


def make_ca(key: rsa.RSAPrivateKey = CA_KEY, ca: bool = True) -> x509.Certificate:
    subject = name("Test Auth CA")
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(NOW - dt.timedelta(days=1)).not_valid_after(NOW + dt.timedelta(days=9))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))


CA = make_ca()


def make_leaf(serial: str = SERIAL, days: int = 5) -> x509.Certificate:
    return (x509.CertificateBuilder().subject_name(name("JPKI", serial)).issuer_name(CA.subject)
            .public_key(CARD_KEY.public_key()).serial_number(0xABCDEF)
            .not_valid_before(NOW - dt.timedelta(days=1)).not_valid_after(NOW + dt.timedelta(days=days))
            .sign(CA_KEY, hashes.SHA256()))


def make_crl(key: rsa.RSAPrivateKey = CA_KEY, revoked: dict[int, x509.ReasonFlags] | None = None,
             this: dt.datetime = NOW - dt.timedelta(hours=1),
             next_: dt.datetime = NOW + dt.timedelta(hours=1),
             number: int = 1) -> x509.CertificateRevocationList:
    builder = (x509.CertificateRevocationListBuilder().issuer_name(CA.subject)
               .last_update(this).next_update(next_)
               .add_extension(x509.CRLNumber(number), critical=False))
    for serial, reason in (revoked or {}).items():
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(this)
            .add_extension(x509.CRLReason(reason), critical=False).build())
    return builder.sign(key, hashes.SHA256())


def party(*crls: x509.CertificateRevocationList, ca: x509.Certificate = CA) -> RelyingParty:
    return RelyingParty((("ca.pem", ca),), tuple((f"crl{i}", c) for i, c in enumerate(crls)))


def checks(rp: RelyingParty, leaf: x509.Certificate | None = None,
           serial: str | None = SERIAL) -> dict[str, tuple[bool, str]]:
    leaf = leaf or make_leaf()
    ok, detail, found = rp._certificate(leaf, serial, NOW)
    result = {"jpki_certificate": (ok, detail)}
    if found is not None:
        _, crl_ok, crl_detail = rp._crl(leaf, found, NOW)
        result["crl"] = (crl_ok, crl_detail)
    return result


def test_a_good_certificate_and_current_crl_pass() -> None:
    result = checks(party(make_crl()))
    assert result["jpki_certificate"][0] and result["crl"][0]
    assert "not listed" in result["crl"][1]


@pytest.mark.parametrize(("crl", "message"), [
    (make_crl(key=OTHER_KEY), "crl0 names CN=Test Auth CA"),
    (make_crl(next_=NOW - dt.timedelta(minutes=1)), "out of date"),
    (make_crl(this=NOW + dt.timedelta(hours=1), next_=NOW + dt.timedelta(hours=2)),
     "out of date"),
    (make_crl(revoked={0xABCDEF: x509.ReasonFlags.key_compromise}), "revoked (keyCompromise)"),
    (make_crl(revoked={0xABCDEF: x509.ReasonFlags.certificate_hold}), "on hold"),
])
def test_each_crl_attack_is_refused(crl: x509.CertificateRevocationList, message: str) -> None:
    ok, detail = checks(party(crl))["crl"]
    assert not ok and message.replace("CN=", "") in detail.replace("CN=", "")


def test_another_keys_crl_is_refused_even_beside_a_good_one() -> None:
    ok, detail = checks(party(make_crl(), make_crl(key=OTHER_KEY, number=99)))["crl"]
    assert not ok and "not signed by that CA's key" in detail and "crl1" in detail


def test_the_newest_crl_decides() -> None:
    revoked = make_crl(revoked={0xABCDEF: x509.ReasonFlags.superseded}, number=2)
    ok, detail = checks(party(make_crl(number=1), revoked))["crl"]
    assert not ok and "number 2" in detail


def test_no_crl_of_the_ca_is_refused() -> None:
    ok, detail = checks(party())["crl"]
    assert not ok and "no CRL of Test Auth CA given" in detail


def test_certificate_checks() -> None:
    assert "names card 999" in checks(party(make_crl()), make_leaf("999"))["jpki_certificate"][1]
    assert "names card" in checks(party(make_crl()), serial=None)["jpki_certificate"][1]
    expired = make_leaf(days=-1)
    assert "outside its validity" in checks(party(make_crl()), expired)["jpki_certificate"][1]
    stranger = party(make_crl(), ca=make_ca(OTHER_KEY))
    result = checks(stranger)
    assert "not issued by any given CA" in result["jpki_certificate"][1] and "crl" not in result


def test_inputs_pem_der_and_refusals() -> None:
    pem = CA.public_bytes(serialization.Encoding.PEM)
    crl = make_crl()
    loaded = RelyingParty.load([("a.pem", pem + pem), ("b.der", CA.public_bytes(
        serialization.Encoding.DER))], [("c.pem", crl.public_bytes(serialization.Encoding.PEM)),
                                        ("d.der", crl.public_bytes(serialization.Encoding.DER))])
    assert len(loaded.cas) == 3 and len(loaded.crls) == 2
    with pytest.raises(RelyingPartyInputError, match="needs at least one --ca"):
        RelyingParty.load([], [("c.pem", b"")])
    leaf_pem = make_leaf().public_bytes(serialization.Encoding.PEM)
    with pytest.raises(RelyingPartyInputError, match=r"leaf\.pem: JPKI is not a CA certificate"):
        RelyingParty.load([("leaf.pem", leaf_pem)], [])
    with pytest.raises(RelyingPartyInputError, match=r"--crl c\.pem: not a CRL"):
        RelyingParty.load([("a.pem", pem)], [("c.pem", pem)])


PEM_HEADS = [b"", b"-----BEGIN CERTIFICATE-----\n", b"-----BEGIN X509 CRL-----\n",
             b"\x30\x82\x01\x00"]


@settings(max_examples=200, deadline=None)
@given(head=st.sampled_from(PEM_HEADS), body=st.binary(max_size=400),
       tail=st.sampled_from([b"", b"\n-----END CERTIFICATE-----\n", b"\n-----END X509 CRL-----\n"]))
def test_garbage_input_files_are_a_clear_error(head: bytes, body: bytes, tail: bytes) -> None:
    data = head + body + tail
    pem = CA.public_bytes(serialization.Encoding.PEM)
    for cas, crls in (([("x", data)], []), ([("a.pem", pem)], [("x", data)])):
        try:
            RelyingParty.load(cas, crls)
        except RelyingPartyInputError as exc:
            assert str(exc).startswith(("--ca x: ", "--crl x: "))


def test_every_registry_reason_has_a_crl_reason_code() -> None:
    assert set(CERTIFICATE_REVOKE_REASONS) | {"hold"} == set(CRL_REASONS)
    expected = {"lost": "keyCompromise", "stolen": "keyCompromise", "key-lost": "keyCompromise",
                "superseded": "superseded", "renewed": "superseded",
                "four-info-changed": "affiliationChanged", "moved-out": "affiliationChanged",
                "returned": "cessationOfOperation", "damaged": "cessationOfOperation",
                "deceased": "cessationOfOperation"}
    assert {r: crl_reason("revoked", r).value for r in expected} == expected
    assert crl_reason("hold", "investigation") == x509.ReasonFlags.certificate_hold
    with pytest.raises(ValueError, match="no CRL reason code"):
        crl_reason("revoked", "bored")
