"""Ed25519 keys in the token (CKK_EC_EDWARDS, CKM_EDDSA): the provision log's checkpoint
note signer. SoftHSM 2.6 with python-pkcs11 0.10 generates, stores and signs with them;
the private key is sensitive and non-extractable like every static key.
"""

from __future__ import annotations

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

from .errors import HsmError
from .keys import _versions, latest_version, role_key
from .roles import KeyRole, label_for
from .token import Hsm

ED25519_OID = "1.3.101.112"
ED25519_PUBLIC_BYTES = 32


def generate_ed25519_key(hsm: Hsm, role: KeyRole, version: int) -> None:
    label = label_for(role, version)
    hsm.call(lambda s: s.generate_keypair(
        KeyType.EC_EDWARDS, 0, store=True, label=label, id=label.encode("ascii"),
        mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
        public_template={Attribute.EC_PARAMS: encode_named_curve_parameters(ED25519_OID),
                         Attribute.VERIFY: True, Attribute.TOKEN: True},
        private_template={Attribute.TOKEN: True, Attribute.PRIVATE: True,
                          Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
                          Attribute.SIGN: True}))


def ensure_ed25519_key(hsm: Hsm, role: KeyRole) -> tuple[str, bool]:
    """The newest Ed25519 key of ``role``, created unless present; (label, created)."""
    version = latest_version(hsm, role)
    if version is None:
        generate_ed25519_key(hsm, role, 1)
        return label_for(role, 1), True
    return label_for(role, version), False


def _raw_point(point: bytes) -> bytes:
    """CKA_EC_POINT holds the 32-byte key, DER OCTET STRING-wrapped (04 20 …) or bare."""
    if len(point) == ED25519_PUBLIC_BYTES + 2 and point[:2] == b"\x04\x20":
        return point[2:]
    if len(point) == ED25519_PUBLIC_BYTES:
        return point
    raise HsmError(f"unexpected Ed25519 public key encoding ({len(point)} bytes)")


def public_keys(hsm: Hsm, role: KeyRole) -> dict[int, bytes]:
    """Every version of ``role``'s Ed25519 public key: {version: 32 bytes}."""
    def read(session: pkcs11.Session) -> dict[int, bytes]:
        found = {}
        for version, _ in _versions(session, role):
            try:
                key = session.get_key(object_class=ObjectClass.PUBLIC_KEY,
                                      label=label_for(role, version))
            except pkcs11.NoSuchKey:
                continue
            found[version] = _raw_point(bytes(key[Attribute.EC_POINT]))
        return found

    return hsm.call(read)


def sign(hsm: Hsm, role: KeyRole, version: int, data: bytes) -> bytes:
    """Pure Ed25519 signature (64 bytes) of ``data`` by the token key."""
    return hsm.call(lambda s: bytes(role_key(s, role, version)
                                    .sign(data, mechanism=Mechanism.EDDSA)))
