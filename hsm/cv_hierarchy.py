"""Our CV hierarchy (docs/resident-card.md, RC §6): six RSA-2048 keys in the token, each
with CKA_ID = its 16-byte CV key ID (``7000020/001`` …), and the three CV certificates
between them, signed in the token and kept as token data objects.

- ``cv-root`` (7000020) certifies ``cv-mf-intermediate`` (7000022): MF GET DATA ``00F8``;
- ``cv-card-info-ca`` (7000033) certifies ``cv-card-info-signer`` (7000031): card-info EF ``0004``;
- ``cv-surface-ca`` (7000023) certifies ``cv-surface-signer`` (7000021): surface EF ``0004``.

The three CAs are the station's trust anchors (``station_anchors``). A new version of a
role takes the next group number (``/002``); every version stays in the token, so cards
issued under an old one keep verifying.
"""

from __future__ import annotations

from dataclasses import dataclass

import pkcs11
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pkcs11 import Attribute, ObjectClass

from cardlib.cv_certificate import (
    CvCertificate,
    KeyId,
    cv_body,
    decode_cv_certificate,
    make_cv_certificate,
)

from .data_objects import read_data, write_data
from .errors import HsmError, KeyNotFoundError
from .keys import generate_rsa_key, latest_version
from .roles import KeyRole, label_for
from .signer import TokenRsaSigner
from .token import Hsm

CV_KEY_NUMBERS = {
    KeyRole.CV_ROOT: "7000020",
    KeyRole.CV_MF_INTERMEDIATE: "7000022",
    KeyRole.CV_CARD_INFO_CA: "7000033",
    KeyRole.CV_CARD_INFO_SIGNER: "7000031",
    KeyRole.CV_SURFACE_CA: "7000023",
    KeyRole.CV_SURFACE_SIGNER: "7000021",
}
CV_ROLES = tuple(CV_KEY_NUMBERS)
CV_ISSUER_OF = {
    KeyRole.CV_MF_INTERMEDIATE: KeyRole.CV_ROOT,
    KeyRole.CV_CARD_INFO_SIGNER: KeyRole.CV_CARD_INFO_CA,
    KeyRole.CV_SURFACE_SIGNER: KeyRole.CV_SURFACE_CA,
}
ANCHOR_ROLES = tuple(CV_ISSUER_OF.values())
MAX_VERSION = 999  # the group is 3 ASCII digits
CERTIFICATE_LABEL = "juki/cv-certificate/{role}/v{version}"


def cv_key_id(role: KeyRole, version: int) -> KeyId:
    """The 16-byte key ID of ``role`` v``version``: number, ``08 05``, group, zeros."""
    if not 1 <= version <= MAX_VERSION:
        raise HsmError(f"{role.value}: version {version} does not fit a 3-digit key group")
    return KeyId.of(CV_KEY_NUMBERS[role], f"{version:03d}")


def certificate_label(role: KeyRole, version: int) -> str:
    return CERTIFICATE_LABEL.format(role=role.value, version=version)


@dataclass(frozen=True)
class CvSigner:
    """A CV role's key in the token, named by its key ID; it signs in the token."""

    role: KeyRole
    version: int
    key_id: KeyId
    token_key: TokenRsaSigner

    @classmethod
    def of(cls, hsm: Hsm, role: KeyRole, version: int) -> CvSigner:
        return cls(role, version, cv_key_id(role, version), TokenRsaSigner(hsm, role, version))

    def public_key(self) -> rsa.RSAPublicKey:
        return self.token_key.public_key()

    def sign(self, message: bytes) -> bytes:
        """sha256WithRSAEncryption (PKCS#1 v1.5 over DigestInfo(SHA-256(message)))."""
        return self.token_key.sign(message, padding.PKCS1v15(), hashes.SHA256())

    def sign_padded(self, payload: bytes) -> bytes:
        """PKCS#1 v1.5 type-1 padding of ``payload`` as given (CKM_RSA_PKCS)."""
        return self.token_key.sign_padded(payload)

    def certify(self, holder: KeyId, key: rsa.RSAPublicKey) -> CvCertificate:
        """A CV certificate of ``key`` named ``holder``, issued by this key."""
        return make_cv_certificate(self.key_id, holder, key,
                                   self.sign(cv_body(self.key_id, holder, key)))


def _certify_subordinate(hsm: Hsm, role: KeyRole, version: int) -> CvCertificate:
    """Certify ``role`` v``version`` by its CA's newest version; store the certificate."""
    ca_role = CV_ISSUER_OF[role]
    ca_version = latest_version(hsm, ca_role)
    if ca_version is None:
        raise KeyNotFoundError(f"no {ca_role.value} key in the token (run `juki hsm init`)")
    subject = CvSigner.of(hsm, role, version)
    certificate = CvSigner.of(hsm, ca_role, ca_version).certify(subject.key_id,
                                                                subject.public_key())
    write_data(hsm, certificate_label(role, version), certificate.encode())
    return certificate


def _generate(hsm: Hsm, role: KeyRole, version: int) -> None:
    generate_rsa_key(hsm, role, version, key_id=cv_key_id(role, version).raw)


def ensure_cv_hierarchy(hsm: Hsm) -> list[tuple[str, bool]]:
    """The six CV keys and the three certificates, created unless present (idempotent);
    (label, created) for each key."""
    result = []
    for role in CV_ROLES:  # the CAs come before the keys they certify
        version = latest_version(hsm, role)
        created = version is None
        if version is None:
            version = 1
            _generate(hsm, role, version)
        if role in CV_ISSUER_OF and not read_data(hsm, certificate_label(role, version)):
            _certify_subordinate(hsm, role, version)
            created = True
        result.append((label_for(role, version), created))
    return result


def rotate_cv_role(hsm: Hsm, role: KeyRole) -> int:
    """A new version of ``role`` beside the old ones; a CA's rotation also rotates the key
    it certifies, so the current signer chains to the current CA. Returns the version."""
    if role not in CV_KEY_NUMBERS:
        raise HsmError(f"{role.value} is not a CV role")
    version = (latest_version(hsm, role) or 0) + 1
    _generate(hsm, role, version)
    if role in CV_ISSUER_OF:
        _certify_subordinate(hsm, role, version)
    for subordinate, ca in CV_ISSUER_OF.items():
        if ca == role:
            rotate_cv_role(hsm, subordinate)
    return version


def _public_key(hsm: Hsm, role: KeyRole, version: int) -> rsa.RSAPublicKey:
    label = label_for(role, version)

    def read(session: pkcs11.Session) -> tuple[bytes, bytes]:
        key = session.get_key(object_class=ObjectClass.PUBLIC_KEY, label=label)
        return key[Attribute.MODULUS], key[Attribute.PUBLIC_EXPONENT]

    modulus, exponent = hsm.call(read)
    return rsa.RSAPublicNumbers(int.from_bytes(exponent, "big"),
                                int.from_bytes(modulus, "big")).public_key()


def station_anchors(hsm: Hsm) -> dict[bytes, rsa.RSAPublicKey]:
    """Every version of the three CA keys by 16-byte key ID: the trust store's anchors
    for the cards this station (and any station sharing its token) issued."""
    anchors = {}
    for role in ANCHOR_ROLES:
        for version in range(1, (latest_version(hsm, role) or 0) + 1):
            anchors[cv_key_id(role, version).raw] = _public_key(hsm, role, version)
    return anchors


def stored_certificate(hsm: Hsm, role: KeyRole, version: int) -> CvCertificate:
    """The stored CV certificate of ``role`` v``version``, checked against its holder key
    and its issuer's key in the token (a swapped data object is refused)."""
    values = read_data(hsm, certificate_label(role, version))
    if not values:
        raise KeyNotFoundError(f"no CV certificate of {label_for(role, version)} "
                               "(run `juki hsm init`)")
    certificate = decode_cv_certificate(values[-1])
    ca_role = CV_ISSUER_OF[role]
    ca_version = int(certificate.issuer.group)
    holder = CvSigner.of(hsm, role, version)
    if (certificate.holder != holder.key_id
            or certificate.issuer != cv_key_id(ca_role, ca_version)
            or certificate.public_key.public_numbers() != holder.public_key().public_numbers()
            or not certificate.verifies_under(_public_key(hsm, ca_role, ca_version))):
        raise HsmError(f"the stored CV certificate of {label_for(role, version)} does not "
                       "match the token's keys")
    return certificate


@dataclass(frozen=True)
class CvHierarchy:
    """The current signers and the certificates an issuance writes, looked up once."""

    root_id: KeyId
    mf_certificate: CvCertificate  # MF 00F8: root -> intermediate (GET DATA: contents)
    mf_intermediate: CvSigner  # signs MF 7F21; its ID is MF 00F7
    card_info_certificate: CvCertificate  # card-info EF 0004
    card_info_signer: CvSigner  # DF33, DF52
    surface_certificate: CvCertificate  # surface EF 0004
    surface_signer: CvSigner  # DF13, DF28, DF43

    @classmethod
    def current(cls, hsm: Hsm) -> CvHierarchy:
        def newest(role: KeyRole) -> tuple[CvSigner, CvCertificate]:
            version = latest_version(hsm, role)
            if version is None:
                raise KeyNotFoundError(f"no {role.value} key in the token (run `juki hsm init`)")
            return CvSigner.of(hsm, role, version), stored_certificate(hsm, role, version)

        mf, mf_cert = newest(KeyRole.CV_MF_INTERMEDIATE)
        card_info, card_info_cert = newest(KeyRole.CV_CARD_INFO_SIGNER)
        surface, surface_cert = newest(KeyRole.CV_SURFACE_SIGNER)
        return cls(mf_cert.issuer, mf_cert, mf, card_info_cert, card_info, surface_cert, surface)
