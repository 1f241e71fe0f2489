"""The token's signing keys with their certificates (the issuing CAs and the plain
signers: integrity records, audit checkpoints): creation (idempotent), certificates,
issuing card certificates.

A signer's self-signed certificate is built by ``cryptography`` and signed by the token
key; it is stored in the token as a certificate object with the key's label, so the
token alone holds the whole CA (or signer).
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

import pkcs11
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from pkcs11 import Attribute, CertificateType, ObjectClass

from .errors import KeyNotFoundError
from .keys import generate_rsa_key, latest_version
from .roles import CERTIFIES_OTHERS, SIGNER_SUBJECTS, KeyRole, label_for
from .signer import TokenRsaSigner
from .token import Hsm

SELF_SIGNED_VALIDITY = dt.timedelta(days=20 * 366)
ORGANISATION = "Juki Registry Network (test)"


@dataclass(frozen=True)
class SignerInit:
    role: str
    label: str
    created: bool
    certificate: x509.Certificate


def _name(common_name: str, serial_number: str | None = None,
          unit: str | None = None) -> x509.Name:
    parts = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION),
    ]
    if unit:
        parts.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    parts.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    if serial_number:
        parts.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, serial_number))
    return x509.Name(parts)


def _store_certificate(hsm: Hsm, label: str, cert: x509.Certificate) -> None:
    der = cert.public_bytes(serialization.Encoding.DER)
    subject = cert.subject.public_bytes()
    hsm.call(lambda s: s.create_object({
        Attribute.CLASS: ObjectClass.CERTIFICATE,
        Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
        Attribute.TOKEN: True,
        Attribute.LABEL: label,
        Attribute.ID: label.encode("ascii"),
        Attribute.SUBJECT: subject,
        Attribute.VALUE: der,
    }))


def load_certificate(hsm: Hsm, role: KeyRole, version: int) -> x509.Certificate | None:
    label = label_for(role, version)

    def read(session: pkcs11.Session) -> bytes | None:
        found = list(session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE,
                                          Attribute.LABEL: label}))
        return bytes(found[0][Attribute.VALUE]) if found else None

    der = hsm.call(read)
    return x509.load_der_x509_certificate(der) if der else None


def certificates_by_version(hsm: Hsm, role: KeyRole) -> dict[int, x509.Certificate]:
    """Every version's certificate by version (a version without one is left out)."""
    newest = latest_version(hsm, role) or 0
    found = {v: load_certificate(hsm, role, v) for v in range(1, newest + 1)}
    return {v: c for v, c in found.items() if c is not None}


def role_certificates(hsm: Hsm, role: KeyRole) -> list[x509.Certificate]:
    """Every version's certificate, oldest first (old cards keep verifying)."""
    return list(certificates_by_version(hsm, role).values())


def self_signed_certificate(signer: TokenRsaSigner, common_name: str, version: int,
                            is_ca: bool = True) -> x509.Certificate:
    """A self-signed certificate for a token key: a CA (keyCertSign, cRLSign) or, for a
    plain signer, an end entity (digitalSignature)."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    name = _name(f"{common_name} v{version}")
    public = signer.public_key()
    usage = x509.KeyUsage(not is_ca, False, False, False, False, is_ca, is_ca, False, False)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + SELF_SIGNED_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=0 if is_ca else None),
                       critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(signer, hashes.SHA256())
    )


def ensure_signer_certificate(hsm: Hsm, role: KeyRole) -> SignerInit:
    """Create the signing key and self-signed certificate of ``role`` (a CA or a plain
    signer) unless they exist (idempotent)."""
    version = latest_version(hsm, role)
    created = False
    if version is None:
        version = 1
        generate_rsa_key(hsm, role, version)
        created = True
    cert = load_certificate(hsm, role, version)
    if cert is None:
        cert = self_signed_certificate(TokenRsaSigner(hsm, role, version),
                                       SIGNER_SUBJECTS[role], version,
                                       is_ca=role in CERTIFIES_OTHERS)
        _store_certificate(hsm, label_for(role, version), cert)
        created = True
    return SignerInit(role.value, label_for(role, version), created, cert)


def current_certificate(hsm: Hsm, role: KeyRole) -> tuple[int, x509.Certificate]:
    version = latest_version(hsm, role)
    cert = load_certificate(hsm, role, version) if version else None
    if version is None or cert is None:
        raise KeyNotFoundError(f"no {role.value} in the token (run `juki hsm init`)")
    return version, cert


@dataclass(frozen=True)
class TokenKey:
    """A role's current key, looked up once: its certificate and a signer for it.
    Issuing a card signs several times with the same keys; one lookup serves them all."""

    certificate: x509.Certificate
    signer: TokenRsaSigner

    @classmethod
    def current(cls, hsm: Hsm, role: KeyRole) -> TokenKey:
        version, certificate = current_certificate(hsm, role)
        return cls(certificate, TokenRsaSigner(hsm, role, version))


@dataclass(frozen=True)
class CardCertificateRequest:
    """What a card certificate says: which card, which key, for what."""

    public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey
    card_serial: str  # resident cards: the 15-digit serial; operator cards: the GUID
    not_after: dt.date
    common_name: str = "Juki Resident Card"
    non_repudiation: bool = False  # JPKI signature certificates
    other_names: tuple[tuple[str, bytes], ...] = ()  # (OID, DER value) for subjectAltName
    unit: str | None = None  # OU: the operator's municipality code
    client_auth: bool = False  # extendedKeyUsage clientAuth (operator login keys)
    crl_url: str | None = None  # CRLDistributionPoints: where the issuing CA's CRL is published


def issue_certificate(ca: TokenKey, request: CardCertificateRequest) -> x509.Certificate:
    """Certify an on-card key with the issuing CA ``ca`` (its key stays in the token)."""
    ca_cert = ca.certificate
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    end = dt.datetime.combine(request.not_after, dt.time(23, 59, 59), dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(request.common_name, request.card_serial, request.unit))
        .issuer_name(ca_cert.subject)
        .public_key(request.public_key)
        .serial_number(int.from_bytes(secrets.token_bytes(16), "big") >> 1)
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, request.non_repudiation, False, False, False, False,
                                     False, False, False), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),
                       critical=False)
    )
    if request.crl_url:
        point = x509.DistributionPoint([x509.UniformResourceIdentifier(request.crl_url)],
                                       None, None, None)
        builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
    if request.client_auth:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    if request.other_names:
        names = [x509.OtherName(x509.ObjectIdentifier(oid), value)
                 for oid, value in request.other_names]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca.signer, hashes.SHA256())
