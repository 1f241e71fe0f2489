"""EC P-256 keys in the token for TLS between stations and a shared registry: the
registry operator's station CA and each station's TLS client key (issue 14).

Generated in the token, private, sensitive and non-extractable, sign-only. ``TokenEcSigner``
is a ``cryptography`` EC private key whose ``sign`` runs in the token (CKM_ECDSA over the
SHA-256 digest), so ``cryptography`` builds the CSR, certificates and CRLs and we never
hand-write ASN.1. libpq uses the station's key through the OpenSSL pkcs11 engine, by its
label (``pkcs11_uri``); nothing here or there can export it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pkcs11
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

from .errors import HsmError
from .keys import latest_version, role_key
from .roles import KeyRole, label_for
from .token import Hsm

P256_OID = "1.2.840.10045.3.1.7"
P256_POINT_BYTES = 65  # 04 || X || Y


def generate_ec_key(hsm: Hsm, role: KeyRole, version: int) -> None:
    """An EC P-256 signing key pair in the token; the private half never leaves it."""
    label = label_for(role, version)

    def generate(session: pkcs11.Session) -> None:
        params = session.create_domain_parameters(
            KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters(P256_OID)}, local=True)
        params.generate_keypair(
            store=True, label=label, id=label.encode("ascii"),
            public_template={Attribute.TOKEN: True, Attribute.VERIFY: True},
            private_template={Attribute.TOKEN: True, Attribute.PRIVATE: True,
                              Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
                              Attribute.SIGN: True, Attribute.DERIVE: False,
                              Attribute.DECRYPT: False, Attribute.UNWRAP: False})

    hsm.call(generate)


def ensure_ec_key(hsm: Hsm, role: KeyRole, *, new: bool = False) -> tuple[int, bool]:
    """(version, created): the newest key of ``role``; a first one, or with ``new`` a
    next version (the old one stays in the token, unused)."""
    version = latest_version(hsm, role)
    if version is not None and not new:
        return version, False
    version = (version or 0) + 1
    generate_ec_key(hsm, role, version)
    return version, True


def _point(raw: bytes) -> bytes:
    """CKA_EC_POINT: the uncompressed point, DER OCTET STRING-wrapped (04 41 04 …) or bare."""
    if len(raw) == P256_POINT_BYTES + 2 and raw[:2] == b"\x04\x41":
        return raw[2:]
    if len(raw) == P256_POINT_BYTES and raw[0] == 4:
        return raw
    raise HsmError(f"unexpected EC public key encoding ({len(raw)} bytes)")


def ec_public_key(hsm: Hsm, role: KeyRole, version: int) -> ec.EllipticCurvePublicKey:
    label = label_for(role, version)

    def read(session: pkcs11.Session) -> bytes:
        try:
            key = session.get_key(object_class=ObjectClass.PUBLIC_KEY, label=label)
        except pkcs11.NoSuchKey:
            raise HsmError(f"no public key {label!r} in the token") from None
        return bytes(key[Attribute.EC_POINT])

    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), _point(hsm.call(read)))


def pkcs11_uri(token_label: str, role: KeyRole, version: int, pin_file: str) -> str:
    """RFC 7512 URI of the private key for the OpenSSL pkcs11 engine, its PIN read by the
    engine from ``pin_file`` (a path: the PIN itself is never in the URI)."""
    return (f"pkcs11:token={quote(token_label, safe='')};"
            f"object={quote(label_for(role, version), safe='')};type=private;"
            f"pin-source=file:{pin_file}")


class TokenEcSigner(ec.EllipticCurvePrivateKey):
    """ECDSA with SHA-256 by the token key of ``role`` v``version``."""

    def __init__(self, hsm: Hsm, role: KeyRole, version: int) -> None:
        self._hsm = hsm
        self.role = role
        self.version = version
        self._public = ec_public_key(hsm, role, version)

    def __repr__(self) -> str:
        return f"TokenEcSigner({label_for(self.role, self.version)!r})"

    def sign(self, data: bytes, signature_algorithm: Any) -> bytes:  # type: ignore[override]
        if not (isinstance(signature_algorithm, ec.ECDSA)
                and isinstance(signature_algorithm.algorithm, hashes.SHA256)):
            raise HsmError("the token EC signer supports only ECDSA with SHA-256")
        digest = hashes.Hash(hashes.SHA256())
        digest.update(data)
        value = digest.finalize()
        raw = self._hsm.call(lambda s: bytes(role_key(s, self.role, self.version)
                                             .sign(value, mechanism=Mechanism.ECDSA)))
        half = len(raw) // 2
        return encode_dss_signature(int.from_bytes(raw[:half], "big"),
                                    int.from_bytes(raw[half:], "big"))

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def exchange(self, algorithm: Any, peer_public_key: Any) -> bytes:
        raise HsmError("this key only signs")

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        raise HsmError("the private key never leaves the token")

    def private_bytes(self, encoding: Any, format: Any, encryption_algorithm: Any) -> bytes:
        raise HsmError("the private key never leaves the token")

    def __copy__(self) -> TokenEcSigner:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> TokenEcSigner:
        return self
