"""Certificate chain checks in software (``cryptography``): is a certificate within its
validity period, and which CA certificate signed it. No token and no card: holder-side
code (JPKI certificates read from a card) uses it as well as the station."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.exceptions import InvalidSignature


def within_validity(certificate: x509.Certificate) -> bool:
    now = dt.datetime.now(dt.UTC)
    return certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc


def issuing_ca(certificate: x509.Certificate,
               ca_certs: list[x509.Certificate]) -> x509.Certificate | None:
    """The CA among ``ca_certs`` (e.g. every version of a role: old cards keep verifying)
    that directly issued ``certificate`` (issuer name and signature); else None."""
    for ca in ca_certs:
        if ca.subject != certificate.issuer:
            continue
        try:
            certificate.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return ca
    return None
