"""JPKI certificates: who issues them, how long they live, where they go on the card.

- the user-authentication certificate (JPKI EF ``000A``) is issued by
  ``resident-issuing-ca`` (the auth CA; its certificate is EF ``000B``), the signature
  certificate (EF ``0001``, carrying the 4 information) by ``resident-sign-ca`` (EF
  ``0002``);
- each lives until the resident's 5th birthday after its issuance date, never past the
  card's expiry (``jpki_not_after``);
- each carries the CRLDistributionPoints URL of the CA version that signed it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from cardlib import tlv
from cardlib.constants import Aid, JpkiFile
from hsm.ca import CardCertificateRequest, TokenKey, issue_certificate
from hsm.roles import KeyRole
from hsm.token import Hsm

from ..errors import IssuanceError
from ..pki.issued import IssuedCertificate
from ..pki.issued import crl_url as _crl_url

__all__ = ["IssuedCertificate", "JpkiSigners", "issue_jpki_certificate", "jpki_not_after",
           "write_jpki_certificate"]

JPKI_KINDS = ("jpki-auth", "jpki-sign")
JPKI_OTHER_NAME_ARC = "1.2.392.200149.8.5.5"
UTF8_STRING = 0x0C
CERTIFICATE_LIFE_BIRTHDAYS = 5
COMMON_NAMES = {"jpki-auth": "JPKI User Authentication", "jpki-sign": "JPKI Digital Signature"}
CERT_FILES = {"jpki-auth": JpkiFile.AUTH_CERT, "jpki-sign": JpkiFile.SIGN_CERT}
CA_FILES = {"jpki-auth": JpkiFile.AUTH_CA_CERT, "jpki-sign": JpkiFile.SIGN_CA_CERT}


class Identity(Protocol):
    """The 4 information (``cardlib.records.FourInfo`` or an ``IdentityRequest``)."""

    name: str
    address: str
    birth_date: dt.date
    sex: str


@dataclass(frozen=True)
class JpkiSigners:
    """The two JPKI CAs' current keys, looked up once (before any card I/O)."""

    auth: TokenKey  # resident-issuing-ca
    sign: TokenKey  # resident-sign-ca

    @classmethod
    def current(cls, hsm: Hsm) -> JpkiSigners:
        return cls(TokenKey.current(hsm, KeyRole.RESIDENT_ISSUING_CA),
                   TokenKey.current(hsm, KeyRole.RESIDENT_SIGN_CA))

    def for_kind(self, kind: str) -> TokenKey:
        if kind not in JPKI_KINDS:
            raise ValueError(f"not a JPKI certificate kind: {kind!r}")
        return self.auth if kind == "jpki-auth" else self.sign


def _birthday(birth_date: dt.date, year: int) -> dt.date:
    """The birthday in ``year``; a 29 February birthday is 28 February in a common year
    (the day the age is reached, 年齢計算ニ関スル法律)."""
    try:
        return birth_date.replace(year=year)
    except ValueError:
        return dt.date(year, 2, 28)


def jpki_not_after(birth_date: dt.date, issued: dt.date, card_expiry: dt.date) -> dt.date:
    """The last day of a JPKI certificate issued on ``issued``: the resident's 5th
    birthday after that date (a birthday on the issuance day itself does not count), at
    most the card's expiry."""
    if birth_date > issued:
        raise IssuanceError(f"birth date {birth_date} is after the issuance date {issued}")
    year = issued.year if _birthday(birth_date, issued.year) > issued else issued.year + 1
    fifth = _birthday(birth_date, year + CERTIFICATE_LIFE_BIRTHDAYS - 1)
    return min(fifth, card_expiry)


def four_info_other_names(identity: Identity) -> tuple[tuple[str, bytes], ...]:
    """The 4 information as subjectAltName otherName entries (OIDs 1.2.392.200149.8.5.5.x),
    each a UTF8String; the kana name (.2) when the identity has one."""
    values = [("1", identity.name), ("2", getattr(identity, "name_kana", None) or ""),
              ("3", identity.sex), ("4", identity.birth_date.strftime("%Y%m%d")),
              ("5", identity.address)]
    return tuple((f"{JPKI_OTHER_NAME_ARC}.{index}", tlv.Tlv(UTF8_STRING, value.encode()).encode())
                 for index, value in values if value)


def issue_jpki_certificate(hsm_or_signers: Hsm | JpkiSigners, kind: str,
                           public_key: rsa.RSAPublicKey, card_serial: str, not_after: dt.date,
                           identity: Identity | None, crl_base_url: str) -> IssuedCertificate:
    """Certify the card's JPKI key of ``kind`` (``jpki-auth`` | ``jpki-sign``) with its CA
    in the token. ``identity``: the 4 information of the signature certificate (required
    for ``jpki-sign``, ignored for ``jpki-auth``). ``crl_base_url``: the ``[crl]
    base_url``, to which ``/<role>-v<version>.crl`` of the signing CA is always added."""
    signers = (hsm_or_signers if isinstance(hsm_or_signers, JpkiSigners)
               else JpkiSigners.current(hsm_or_signers))
    ca = signers.for_kind(kind)
    signing = kind == "jpki-sign"
    if signing and identity is None:
        raise IssuanceError("a JPKI signature certificate carries the 4 information: "
                            "none given")
    role, version = ca.signer.role.value, ca.signer.version
    url = _crl_url(crl_base_url, role, version)
    request = CardCertificateRequest(
        public_key, card_serial, not_after, COMMON_NAMES[kind], non_repudiation=signing,
        other_names=four_info_other_names(identity) if signing and identity else (),
        crl_url=url)
    return IssuedCertificate(kind, issue_certificate(ca, request), role, version)


class _ApWriter(Protocol):
    def write_file(self, fid: int, content: bytes) -> None: ...


class _CounterWriter(Protocol):
    def rewrite_file(self, aid: bytes, fid: int, content: bytes) -> None: ...


def write_jpki_certificate(ap_or_session: _ApWriter | _CounterWriter, kind: str,
                           certificate: x509.Certificate) -> None:
    """The certificate of ``kind`` into its JPKI EF (auth ``000A``, sign ``0001``): through
    the JPKI AP's writable session at issuance (the AP selected), or a counter session's
    ``rewrite_file`` on an issued card."""
    if kind not in CERT_FILES:
        raise ValueError(f"not a JPKI certificate kind: {kind!r}")
    der = certificate.public_bytes(serialization.Encoding.DER)
    if hasattr(ap_or_session, "rewrite_file"):
        ap_or_session.rewrite_file(Aid.JPKI, CERT_FILES[kind], der)
    else:
        ap_or_session.write_file(CERT_FILES[kind], der)  # type: ignore[union-attr]
