"""JPKI certificate rules (issue 13 §4, §5): the validity ends on the 5th birthday after
issuance, never past the card; the certificate goes to its EF; the CRL URL setting."""

from __future__ import annotations

import datetime as dt

import pytest

from cardlib.constants import Aid, JpkiFile
from tools.errors import IssuanceError, StationConfigError
from tools.issuance.jpki_certs import jpki_not_after, write_jpki_certificate
from tools.pki.issued import DEFAULT_CRL_BASE_URL, crl_base_url, crl_url

D = dt.date
FAR = D(2099, 1, 1)


@pytest.mark.parametrize(("birth", "issued", "expected"), [
    (D(1985, 4, 12), D(2026, 5, 1), D(2031, 4, 12)),  # birthday passed this year
    (D(1985, 4, 12), D(2026, 3, 1), D(2030, 4, 12)),  # birthday still ahead this year
    (D(1985, 4, 12), D(2026, 4, 12), D(2031, 4, 12)),  # issued on the birthday: not counted
    (D(1985, 4, 12), D(2026, 4, 11), D(2030, 4, 12)),  # the day before: counted
    (D(1992, 2, 29), D(2026, 1, 10), D(2030, 2, 28)),  # 29 Feb: 28 Feb in a common year
    (D(1992, 2, 29), D(2025, 3, 1), D(2030, 2, 28)),
    (D(1992, 2, 29), D(2023, 3, 1), D(2028, 2, 29)),  # a leap year: the 29th itself
    (D(1992, 2, 29), D(2026, 2, 28), D(2031, 2, 28)),  # issued on its common-year birthday
    (D(2026, 1, 1), D(2026, 1, 1), D(2031, 1, 1)),  # born today
])
def test_the_fifth_birthday_after_issuance(birth: dt.date, issued: dt.date,
                                           expected: dt.date) -> None:
    assert jpki_not_after(birth, issued, FAR) == expected


def test_never_past_the_card() -> None:
    assert jpki_not_after(D(1985, 4, 12), D(2026, 5, 1), D(2029, 1, 1)) == D(2029, 1, 1)
    assert jpki_not_after(D(1985, 4, 12), D(2026, 5, 1), D(2031, 4, 12)) == D(2031, 4, 12)


def test_a_birth_date_after_issuance_is_refused() -> None:
    with pytest.raises(IssuanceError, match="after the issuance date"):
        jpki_not_after(D(2030, 1, 1), D(2026, 1, 1), FAR)


class ApWriter:
    def __init__(self) -> None:
        self.written: list[tuple[int, bytes]] = []

    def write_file(self, fid: int, content: bytes) -> None:
        self.written.append((fid, content))


class CounterWriter:
    def __init__(self) -> None:
        self.written: list[tuple[bytes, int, bytes]] = []

    def rewrite_file(self, aid: bytes, fid: int, content: bytes) -> None:
        self.written.append((aid, fid, content))


def test_each_certificate_goes_to_its_ef(self_signed) -> None:  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.serialization import Encoding

    der = self_signed.public_bytes(Encoding.DER)
    ap, counter = ApWriter(), CounterWriter()
    write_jpki_certificate(ap, "jpki-auth", self_signed)
    write_jpki_certificate(counter, "jpki-sign", self_signed)
    assert ap.written == [(JpkiFile.AUTH_CERT, der)]
    assert counter.written == [(Aid.JPKI, JpkiFile.SIGN_CERT, der)]
    with pytest.raises(ValueError, match="not a JPKI certificate kind"):
        write_jpki_certificate(ap, "card", self_signed)


@pytest.fixture(scope="module")
def self_signed():  # type: ignore[no-untyped-def]
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "t")])
    now = dt.datetime.now(dt.UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))


def test_crl_url_setting() -> None:
    assert crl_base_url({}) == DEFAULT_CRL_BASE_URL
    assert crl_base_url({"crl": {"base_url": "https://crl.example.jp/juki/"}}) == (
        "https://crl.example.jp/juki")
    assert crl_url("https://crl.example.jp/juki", "resident-sign-ca", 2) == (
        "https://crl.example.jp/juki/resident-sign-ca-v2.crl")
    for bad in ("ftp://x/y", "crl.example.jp", "http://x/?a=1", "http://x/#f", 5):
        with pytest.raises(StationConfigError, match="base_url"):
            crl_base_url({"crl": {"base_url": bad}})
