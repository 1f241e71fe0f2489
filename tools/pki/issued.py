"""A certificate one of the token's CAs issued, as the registry records it, and where the
CRL covering it is published (the CRLDistributionPoints URL every certificate carries)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509

from ..errors import StationConfigError

DEFAULT_CRL_BASE_URL = "http://crl.juki.invalid"


@dataclass(frozen=True)
class IssuedCertificate:
    """``kind``: one of ``tools.registry.schema.CERTIFICATE_KINDS``; the issuer is the
    token key (role, version) that signed it."""

    kind: str
    certificate: x509.Certificate
    issuer_role: str
    issuer_version: int


def crl_file_name(role: str, version: int) -> str:
    """``<role>-v<version>.crl``: the name of the CRL file of one CA version."""
    return f"{role}-v{version}.crl"


def crl_url(base_url: str, role: str, version: int) -> str:
    return f"{base_url.rstrip('/')}/{crl_file_name(role, version)}"


def crl_base_url(settings: Mapping[str, Any]) -> str:
    """``[crl] base_url`` of the station settings (default ``DEFAULT_CRL_BASE_URL``);
    an http(s) URL without query or fragment, else ``StationConfigError``."""
    value = settings.get("crl", {}).get("base_url", DEFAULT_CRL_BASE_URL)
    if not isinstance(value, str):
        raise StationConfigError("[crl] base_url must be a string")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise StationConfigError(f"[crl] base_url {value!r}: an http:// or https:// URL "
                                 "without query or fragment")
    return value.rstrip("/")
