"""A relying party's check of a card's JPKI authentication certificate: only the CA
certificates and CRLs it was given (``juki verify --offline --ca FILE --crl FILE``), no
station token, no registry.

``jpki_certificate``: JPKI EF ``000A`` (free, RC §7.1) is within its validity and directly
issued (name and signature) by one of the given CA certificates, itself a CA within its
validity; its subject serialNumber is the card serial of the 共通AP record.
``crl``: a CRL of that CA is given; every CRL naming that CA verifies under the CA's key
(one that does not is refused, named); the newest one (highest CRL number) is current
(this update ≤ now ≤ next update) and does not list the certificate's serial number. A
delta, indirect or partitioned CRL, or one with a critical extension not understood, is
refused (it is not the complete list; RFC 5280 5.2).
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from cardlib.apps.jpki import JpkiApSession
from cardlib.channel import ApduChannel
from cardlib.errors import ApduError, CardDataError
from hsm.chain import issuing_ca

from ..errors import JukiError
from .jpki import card_serial_of

RELYING_PARTY_CHECKS = ("jpki_certificate", "crl")
MAX_INPUT_BYTES = 4 * 1024 * 1024
PEM_MARKER = b"-----BEGIN "

CheckResult = tuple[str, bool, str]  # (name, ok, detail), as verifier.Check takes it


class RelyingPartyInputError(JukiError):
    """A --ca or --crl file that cannot be used (names the file and what is wrong)."""

    def __init__(self, option: str, message: str) -> None:
        self.option = option
        super().__init__(f"--{option} {message}")


def _common_name(name: x509.Name) -> str:
    found = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(found[0].value) if found else name.rfc4514_string()


def _load_many(kind: str, option: str, source: str, data: bytes,
               pem: object, der: object) -> list[object]:
    """Every PEM block of ``data``, or ``data`` as one DER object; an error names the file."""
    if len(data) > MAX_INPUT_BYTES:
        raise RelyingPartyInputError(option, f"{source}: larger than {MAX_INPUT_BYTES} bytes")
    try:
        if PEM_MARKER in data:  # PEM (text before the first block allowed)
            return list(pem(data))  # type: ignore[operator]
        return [der(data)]  # type: ignore[operator]
    except (ValueError, TypeError) as exc:
        raise RelyingPartyInputError(option, f"{source}: not a {kind} in PEM or DER ({exc})") from None


def _pem_crls(data: bytes) -> list[x509.CertificateRevocationList]:
    end = b"-----END X509 CRL-----"
    blocks = [part + end for part in data.split(end) if PEM_MARKER in part]
    if not blocks:
        raise ValueError("no X509 CRL block")
    return [x509.load_pem_x509_crl(block.strip()) for block in blocks]


class OsRandom:
    """Challenges without a token: the operating system's CSPRNG (``secrets``)."""

    def random_bytes(self, size: int) -> bytes:
        return secrets.token_bytes(size)


@dataclass(frozen=True)
class RelyingParty:
    """The relying party's inputs: (file, CA certificate) and (file, CRL) pairs."""

    cas: tuple[tuple[str, x509.Certificate], ...]
    crls: tuple[tuple[str, x509.CertificateRevocationList], ...]

    @classmethod
    def load(cls, ca_files: Sequence[tuple[str, bytes]],
             crl_files: Sequence[tuple[str, bytes]]) -> RelyingParty:
        """From the files' names and bytes; each PEM (one or more blocks) or DER."""
        if not ca_files:
            raise RelyingPartyInputError("ca", "the relying-party check needs at least one --ca")
        cas = tuple((source, cert) for source, data in ca_files
                    for cert in _load_many("certificate", "ca", source, data,
                                           x509.load_pem_x509_certificates,
                                           x509.load_der_x509_certificate))
        crls = tuple((source, crl) for source, data in crl_files
                     for crl in _load_many("CRL", "crl", source, data, _pem_crls,
                                           x509.load_der_x509_crl))
        for source, cert in cas:
            try:
                constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
            except (x509.ExtensionNotFound, ValueError):
                constraints = None
            if constraints is None or not constraints.ca:
                raise RelyingPartyInputError("ca", f"{source}: {_common_name(cert.subject)} is not a CA "
                                         "certificate (basicConstraints CA:TRUE)")
        return cls(cas, crls)  # type: ignore[arg-type]

    def check(self, channel: ApduChannel, card_serial: str | None,
              now: dt.datetime | None = None) -> list[CheckResult]:
        """The two checks of the card on ``channel`` (its 共通AP serial ``card_serial``)."""
        now = now or dt.datetime.now(dt.UTC)
        try:
            jpki = JpkiApSession(channel)
            jpki.select()
            certificate = jpki.read_certificate("auth")
        except (ApduError, CardDataError) as exc:
            return [("jpki_certificate", False, f"EF 000A: {exc}"),
                    ("crl", False, "not checked: no certificate")]
        ok, detail, ca = self._certificate(certificate, card_serial, now)
        if ca is None:
            return [("jpki_certificate", False, detail),
                    ("crl", False, "not checked: the certificate chains to no given CA")]
        return [("jpki_certificate", ok, detail), self._crl(certificate, ca, now)]

    def _certificate(self, certificate: x509.Certificate, card_serial: str | None,
                     now: dt.datetime) -> tuple[bool, str, tuple[str, x509.Certificate] | None]:
        by_cert = {id(cert): source for source, cert in self.cas}
        ca = issuing_ca(certificate, [cert for _, cert in self.cas])
        if ca is None:
            return False, (f"EF 000A (issuer {_common_name(certificate.issuer)}) is not issued "
                           "by any given CA certificate"), None
        found = (by_cert[id(ca)], ca)
        name = f"{_common_name(ca.subject)} ({found[0]})"
        if not ca.not_valid_before_utc <= now <= ca.not_valid_after_utc:
            return False, f"the CA certificate {name} is outside its validity period", found
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            return False, (f"EF 000A is outside its validity period (until "
                           f"{certificate.not_valid_after_utc.date()})"), found
        if not isinstance(certificate.public_key(), rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
            return False, "EF 000A holds no RSA or EC key", found
        named = card_serial_of(certificate)
        if card_serial is None or named != card_serial:
            return False, (f"EF 000A names card {named or '?'}, the 共通AP record "
                           f"{card_serial or '(none)'}"), found
        return True, (f"EF 000A issued by {name} for card {card_serial}, valid until "
                      f"{certificate.not_valid_after_utc.date()}"), found

    def _crl(self, certificate: x509.Certificate, found: tuple[str, x509.Certificate],
             now: dt.datetime) -> CheckResult:
        source, ca = found
        name = _common_name(ca.subject)
        claiming = [(s, crl) for s, crl in self.crls if crl.issuer == ca.subject]
        if not claiming:
            return "crl", False, f"no CRL of {name} given (--crl)"
        for crl_source, crl in claiming:
            if not crl.is_signature_valid(ca.public_key()):  # type: ignore[arg-type]
                return "crl", False, (f"CRL {crl_source} names {name} as its issuer but is not "
                                      f"signed by that CA's key ({source})")
            partial = _not_complete(crl)
            if partial is not None:
                return "crl", False, (f"CRL {crl_source} of {name} is {partial}: a relying party "
                                      "takes only complete CRLs (RFC 5280 5.2), refused")
        crl_source, crl = max(claiming, key=lambda pair: _crl_number(pair[1]))
        number = _crl_number(crl)
        if crl.next_update_utc is None:
            return "crl", False, f"CRL {crl_source} has no next update: refused"
        if not crl.last_update_utc <= now <= crl.next_update_utc:
            return "crl", False, (f"CRL {crl_source} (number {number}) is out of date: this "
                                  f"update {crl.last_update_utc.isoformat()}, next update "
                                  f"{crl.next_update_utc.isoformat()}")
        entry = crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
        if entry is not None:
            return "crl", False, (f"certificate {certificate.serial_number:x} is listed in CRL "
                                  f"{crl_source} (number {number}): {_reason(entry)} since "
                                  f"{entry.revocation_date_utc.isoformat()}")
        return "crl", True, (f"CRL number {number} of {name} ({crl_source}) verifies under the "
                             f"CA's key, current until {crl.next_update_utc.isoformat()}; "
                             f"certificate {certificate.serial_number:x} not listed")


KNOWN_CRL_EXTENSIONS = (x509.CRLNumber, x509.AuthorityKeyIdentifier,
                        x509.IssuingDistributionPoint)


def _not_complete(crl: x509.CertificateRevocationList) -> str | None:
    """Why ``crl`` is not the complete list of its CA's revoked end-entity certificates
    (a delta, indirect or partitioned CRL, or one with a critical extension not
    understood), or None. As the newest CRL such a one would hide a revocation."""
    try:
        extensions = list(crl.extensions)
    except ValueError as exc:
        return f"unreadable ({exc})"
    for extension in extensions:
        value = extension.value
        if isinstance(value, x509.DeltaCRLIndicator):
            return "a delta CRL"
        if isinstance(value, x509.IssuingDistributionPoint) and (
                value.indirect_crl or value.only_some_reasons or value.only_contains_ca_certs
                or value.only_contains_attribute_certs):
            return "a partitioned or indirect CRL (issuing distribution point)"
        if extension.critical and not isinstance(value, KNOWN_CRL_EXTENSIONS):
            return f"marked with a critical extension it does not understand ({extension.oid.dotted_string})"
    return None


def _crl_number(crl: x509.CertificateRevocationList) -> int:
    try:
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except (x509.ExtensionNotFound, ValueError):
        return -1


def _reason(entry: x509.RevokedCertificate) -> str:
    try:
        flag = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except (x509.ExtensionNotFound, ValueError):
        return "revoked (no reason code)"
    return "on hold (certificateHold)" if flag == x509.ReasonFlags.certificate_hold else (
        f"revoked ({flag.value})")
