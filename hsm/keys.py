"""Generating and finding the project's static keys inside the token.

Every static key is generated in the token, private, sensitive and non-extractable;
nothing here can export a private key.
"""

from __future__ import annotations

from dataclasses import dataclass

import pkcs11
from pkcs11 import Attribute, KeyType, ObjectClass

from cardlib.cv_certificate import KeyId
from cardlib.errors import CardDataError

from .errors import KeyNotFoundError
from .roles import (
    CARD_MASTER_ROLES,
    MAC_KEY_ROLES,
    SECRET_KEY_ROLES,
    KeyRole,
    label_for,
    parse_label,
)
from .token import Hsm

RSA_BITS = 2048
AES_MASTER_BITS = 256


@dataclass(frozen=True)
class KeyInfo:
    role: str
    version: int
    label: str
    key_type: str
    bits: int | None
    sensitive: bool
    extractable: bool
    always_sensitive: bool
    never_extractable: bool
    has_certificate: bool
    cv_key_id: str | None = None  # the CV roles: CKA_ID as "7000020/001"

    def as_json(self) -> dict[str, object]:
        return dict(vars(self))


def object_class(role: KeyRole) -> ObjectClass:
    """Signing roles hold key pairs; master and MAC roles hold secret (AES) keys."""
    return ObjectClass.SECRET_KEY if role in SECRET_KEY_ROLES else ObjectClass.PRIVATE_KEY


def _versions(session: pkcs11.Session, role: KeyRole) -> list[tuple[int, pkcs11.Key]]:
    found = []
    for obj in list(session.get_objects({Attribute.CLASS: object_class(role)})):
        parsed = parse_label(obj.label or "")
        if parsed and parsed[0] == role.value:
            found.append((parsed[1], obj))
    return sorted(found, key=lambda item: item[0])


def latest_version(hsm: Hsm, role: KeyRole) -> int | None:
    versions = hsm.call(lambda s: [v for v, _ in _versions(s, role)])
    return versions[-1] if versions else None


def current_version(hsm: Hsm, role: KeyRole) -> int:
    """The newest version of ``role``'s key; a token without it needs `juki hsm init`."""
    version = latest_version(hsm, role)
    if version is None:
        raise KeyNotFoundError(f"no {role.value} key in the token (run `juki hsm init`)")
    return version


def role_key(session: pkcs11.Session, role: KeyRole, version: int) -> pkcs11.Key:
    """The private (signing roles) or secret (card masters) key of ``role`` v``version``."""
    label = label_for(role, version)
    try:
        return session.get_key(object_class=object_class(role), label=label)
    except pkcs11.NoSuchKey:
        raise KeyNotFoundError(f"no key {label!r} in the token (run `juki hsm init`)") from None


def generate_rsa_key(hsm: Hsm, role: KeyRole, version: int, key_id: bytes | None = None) -> None:
    """An RSA-2048 signing key pair, sensitive and non-extractable, stored in the token;
    CKA_ID is ``key_id`` (the CV roles: their 16-byte key ID) or else the label."""
    label = label_for(role, version)
    key_id = key_id if key_id is not None else label.encode("ascii")
    hsm.call(
        lambda s: s.generate_keypair(
            KeyType.RSA,
            RSA_BITS,
            store=True,
            label=label,
            id=key_id,
            public_template={Attribute.VERIFY: True, Attribute.TOKEN: True},
            private_template={
                Attribute.TOKEN: True,
                Attribute.PRIVATE: True,
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
                Attribute.SIGN: True,
                Attribute.DECRYPT: False,  # a signing key only: no decryption oracle
                Attribute.UNWRAP: False,
            },
        )
    )


def _generate_aes_key(hsm: Hsm, role: KeyRole, version: int, *, mac: bool) -> None:
    """An AES-256 key stored in the token, sensitive and non-extractable, that can only
    derive or, with ``mac``, only compute and check CMACs."""
    label = label_for(role, version)
    hsm.call(
        lambda s: s.generate_key(
            KeyType.AES,
            AES_MASTER_BITS,
            store=True,
            label=label,
            id=label.encode("ascii"),
            template={
                Attribute.TOKEN: True,
                Attribute.PRIVATE: True,
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
                Attribute.DERIVE: not mac,
                Attribute.ENCRYPT: False,
                Attribute.DECRYPT: False,
                Attribute.SIGN: mac,
                Attribute.VERIFY: mac,
                Attribute.WRAP: False,
                Attribute.UNWRAP: False,
            },
        )
    )


def generate_aes_master(hsm: Hsm, role: KeyRole, version: int) -> None:
    """An AES-256 master key that never leaves the token and can only derive keys."""
    _generate_aes_key(hsm, role, version, mac=False)


def generate_mac_key(hsm: Hsm, role: KeyRole, version: int) -> None:
    """An AES-256 key that never leaves the token and can only compute and check CMACs."""
    _generate_aes_key(hsm, role, version, mac=True)


def ensure_secret_keys(hsm: Hsm, roles: tuple[KeyRole, ...]) -> list[tuple[str, bool]]:
    """Secret keys of ``roles``, created unless present; (label, created) each."""
    result = []
    for role in roles:
        version = latest_version(hsm, role)
        created = version is None
        if version is None:
            version = 1
            generate = generate_mac_key if role in MAC_KEY_ROLES else generate_aes_master
            generate(hsm, role, version)
        result.append((label_for(role, version), created))
    return result


def ensure_card_masters(hsm: Hsm) -> list[tuple[str, bool]]:
    """The SCP03 master keys (ENC, MAC, DEK), created unless present; (label, created)."""
    return ensure_secret_keys(hsm, CARD_MASTER_ROLES)


def _cv_key_id(raw: bytes) -> str | None:
    try:
        return KeyId(raw).text
    except CardDataError:
        return None


def inventory(hsm: Hsm) -> list[KeyInfo]:
    """Every project key in the token, with its protection attributes."""

    def collect(session: pkcs11.Session) -> list[KeyInfo]:
        certs = {c[Attribute.LABEL] for c in list(
            session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE}))}
        result = []
        objects = [*session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY}),
                   *session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY})]
        for obj in objects:
            parsed = parse_label(obj.label or "")
            if not parsed:
                continue
            key_type = obj[Attribute.KEY_TYPE]
            bits = (len(obj[Attribute.MODULUS]) * 8 if key_type == KeyType.RSA
                    else 255 if key_type == KeyType.EC_EDWARDS
                    else 256 if key_type == KeyType.EC  # P-256 only (hsm.tls_keys)
                    else obj[Attribute.VALUE_LEN] * 8)
            result.append(KeyInfo(
                role=parsed[0],
                version=parsed[1],
                label=obj.label,
                key_type=KeyType(key_type).name,
                bits=bits,
                sensitive=bool(obj[Attribute.SENSITIVE]),
                extractable=bool(obj[Attribute.EXTRACTABLE]),
                always_sensitive=bool(obj[Attribute.ALWAYS_SENSITIVE]),
                never_extractable=bool(obj[Attribute.NEVER_EXTRACTABLE]),
                has_certificate=obj.label in certs,
                cv_key_id=_cv_key_id(bytes(obj[Attribute.ID] or b"")),
            ))
        return sorted(result, key=lambda k: (k.role, k.version))

    return hsm.call(collect)
