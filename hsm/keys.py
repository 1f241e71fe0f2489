"""Generating and finding the project's static keys inside the token.

Every static key is generated in the token, private, sensitive and non-extractable;
nothing here can export a private key.
"""

from __future__ import annotations

from dataclasses import dataclass

import pkcs11
from pkcs11 import Attribute, KeyType, ObjectClass

from .errors import KeyNotFoundError
from .roles import KeyRole, label_for, parse_label
from .token import Hsm

RSA_BITS = 2048


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

    def as_json(self) -> dict[str, object]:
        return dict(vars(self))


def _versions(session: pkcs11.Session, role: KeyRole) -> list[tuple[int, pkcs11.PrivateKey]]:
    found = []
    for obj in list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})):
        parsed = parse_label(obj.label or "")
        if parsed and parsed[0] == role.value:
            found.append((parsed[1], obj))
    return sorted(found, key=lambda item: item[0])


def latest_version(hsm: Hsm, role: KeyRole) -> int | None:
    versions = hsm.call(lambda s: [v for v, _ in _versions(s, role)])
    return versions[-1] if versions else None


def private_key(session: pkcs11.Session, role: KeyRole, version: int) -> pkcs11.PrivateKey:
    label = label_for(role, version)
    try:
        return session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
    except pkcs11.NoSuchKey:
        raise KeyNotFoundError(f"no private key {label!r} in the token (run `juki hsm init`)") from None


def generate_rsa_key(hsm: Hsm, role: KeyRole, version: int) -> None:
    """An RSA-2048 signing key pair, sensitive and non-extractable, stored in the token."""
    label = label_for(role, version)
    key_id = label.encode("ascii")
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
            },
        )
    )


def inventory(hsm: Hsm) -> list[KeyInfo]:
    """Every project key in the token, with its protection attributes."""

    def collect(session: pkcs11.Session) -> list[KeyInfo]:
        certs = {c[Attribute.LABEL] for c in list(
            session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE}))}
        result = []
        for obj in list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})):
            parsed = parse_label(obj.label or "")
            if not parsed:
                continue
            key_type = obj[Attribute.KEY_TYPE]
            bits = len(obj[Attribute.MODULUS]) * 8 if key_type == KeyType.RSA else None
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
            ))
        return sorted(result, key=lambda k: (k.role, k.version))

    return hsm.call(collect)
