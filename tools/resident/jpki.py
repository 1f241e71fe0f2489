"""Holder-side JPKI operations (no station keys needed): certificates with their chain
checked, and detached CMS signatures made by the card. Work on real cards too."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from cardlib.apps.jpki import JpkiApSession, JpkiKey
from cardlib.errors import CardDataError
from cardlib.remote_key import RemoteRsaPrivateKey
from hsm.chain import issuing_ca, within_validity
from hsm.verify import ChallengeBook, PublicKeyCache

from ..errors import PermissionDeniedError
from ..station.pins import Pin

CHAINS = {"auth": "auth_ca", "sign": "sign_ca"}


@dataclass(frozen=True)
class CertReport:
    name: str
    certificate: x509.Certificate
    chain_ok: bool | None  # None for the CA certificates themselves
    detail: str

    def as_json(self) -> dict[str, Any]:
        cert = self.certificate
        return {"name": self.name, "subject": cert.subject.rfc4514_string(),
                "issuer": cert.issuer.rfc4514_string(),
                "not_after": cert.not_valid_after_utc.isoformat(), "chain_ok": self.chain_ok,
                "detail": self.detail}


def check_issued_by(cert: x509.Certificate, ca: x509.Certificate) -> tuple[bool, str]:
    if not within_validity(cert):
        return False, "outside its validity period"
    if issuing_ca(cert, [ca]) is None:
        return False, "not signed by the CA certificate on the card"
    return True, "signed by the CA certificate on the card, within validity"


def read_certificates(session: JpkiApSession, sign_pin: Pin | None) -> list[CertReport]:
    """auth, auth_ca, sign_ca (and sign, after the sign PIN), each chain checked."""
    names = ["auth", "auth_ca", "sign_ca"]
    if sign_pin is not None:
        session.verify_key_pin(JpkiKey.SIGN, sign_pin.reveal())
        names.insert(2, "sign")
    certs = {name: session.read_certificate(name) for name in names}
    reports = []
    for name, cert in certs.items():
        if name in CHAINS:
            ok, detail = check_issued_by(cert, certs[CHAINS[name]])
            reports.append(CertReport(name, cert, ok, detail))
        else:
            reports.append(CertReport(name, cert, None, "CA certificate"))
    return reports


class CardRsaSigner(RemoteRsaPrivateKey):
    """A private key whose signatures the card makes: the digest is computed here, the
    DigestInfo padded and signed on the card."""

    def __init__(self, session: JpkiApSession, key: JpkiKey, public_key: rsa.RSAPublicKey) -> None:
        super().__init__(public_key)
        self._session, self._key = session, key

    def __repr__(self) -> str:
        return f"CardRsaSigner({self._key.value})"

    def sign(self, data: bytes, padding_: Any, algorithm: Any) -> bytes:  # type: ignore[override]
        if not isinstance(padding_, padding.PKCS1v15) or not isinstance(algorithm, hashes.HashAlgorithm):
            raise CardDataError("the card signs PKCS#1 v1.5 only")
        digest = hashes.Hash(algorithm)
        digest.update(data)
        return self._session.sign_digest(self._key, algorithm, digest.finalize())


def sign_detached(session: JpkiApSession, key: JpkiKey, pin: Pin,
                  content: bytes) -> tuple[bytes, x509.Certificate]:
    """A detached CMS SignedData (DER) over ``content``, signed by the card's ``key``."""
    session.verify_key_pin(key, pin.reveal())
    certificate = session.read_certificate(key.value)
    public_key = certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise CardDataError("JPKI certificate does not hold an RSA key")
    signer = CardRsaSigner(session, key, public_key)
    # Binary: the content is signed byte for byte (no S/MIME CRLF canonicalisation).
    signature = (pkcs7.PKCS7SignatureBuilder().set_data(content)
                 .add_signer(certificate, signer, hashes.SHA256())
                 .sign(serialization.Encoding.DER,
                       [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary]))
    return signature, certificate


HOLDER_PROOF_CONTEXT = b"juki holder proof v1\x00"


def holder_proof_message(purpose: str, station: str, challenge: bytes) -> bytes:
    """What the holder's JPKI auth key signs: the challenge bound to this station and
    this purpose, so a signature made for anything else proves nothing here."""
    return (HOLDER_PROOF_CONTEXT + purpose.encode() + b"\x00" + station.encode() + b"\x00"
            + challenge)


def card_serial_of(certificate: x509.Certificate) -> str | None:
    found = certificate.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    return str(found[0].value) if found else None


def certified_serial(certificate: x509.Certificate, issuing_cas: list[x509.Certificate]) -> str | None:
    """The card serial ``certificate`` names, if one of ``issuing_cas`` issued it."""
    return card_serial_of(certificate) if issuing_ca(certificate, issuing_cas) else None


def prove_holder(session: JpkiApSession, pin: Pin, challenges: ChallengeBook,
                 keys: PublicKeyCache, issuing_cas: list[x509.Certificate], *,
                 purpose: str, station: str) -> str:
    """The person at the card is its holder: after the auth PIN, the card's JPKI
    user-authentication key signs a fresh single-use token challenge (bound to
    ``purpose`` and ``station``); the auth certificate must be within validity, issued
    by one of ``issuing_cas`` (the station's resident issuing CA, never the CA the card
    carries) and verify that signature. Returns the card serial the certificate names;
    anything else raises ``PermissionDeniedError`` (a wrong PIN: ``InvalidPinError``)."""
    certificate = session.read_certificate("auth")
    serial = card_serial_of(certificate)
    public_key = certificate.public_key()
    if not within_validity(certificate):
        raise PermissionDeniedError("the card's authentication certificate is outside its "
                                    "validity period")
    if issuing_ca(certificate, issuing_cas) is None:
        raise PermissionDeniedError("the card's authentication certificate was not issued by "
                                    "this station's resident issuing CA")
    if serial is None or not isinstance(public_key, rsa.RSAPublicKey):
        raise PermissionDeniedError("the card's authentication certificate names no card "
                                    "serial or holds no RSA key")
    session.verify_key_pin(JpkiKey.AUTH, pin.reveal())
    challenge = challenges.issue()
    message = holder_proof_message(purpose, station, challenge)
    digest = hashes.Hash(hashes.SHA256())
    digest.update(message)
    try:
        signature = session.sign_digest(JpkiKey.AUTH, hashes.SHA256(), digest.finalize())
    finally:
        fresh = challenges.redeem(challenge)
    if not fresh:
        raise PermissionDeniedError("the holder-proof challenge was already used")
    if not keys.verify_rsa_sha256(public_key, message, signature):
        raise PermissionDeniedError(f"card {serial}: the JPKI authentication signature over "
                                    "the station's challenge does not verify")
    return serial
