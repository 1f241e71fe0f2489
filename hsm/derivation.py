"""Per-card keys derived inside the token from a master key, and their one export.

derived key = AES-ECB(master, data) with ``CKM_AES_ECB_ENCRYPT_DATA`` (one AES-128 key
per 16-byte block of ``data``). The derived keys are session objects, sensitive (their
value cannot be read) unless derived for the card maker; they are destroyed when the
``with`` block that uses them ends. Only the card-maker path (the rig manufacturing a
blank virtual card) reads derived values, through ``export_for_card_maker``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TypeVar

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism

from .keys import current_version, role_key
from .rig_mark import require_test_token
from .roles import KeyRole
from .token import Hsm

DERIVED_KEY_BITS = 128
K = TypeVar("K")
# Derives a set of keys (by name) in the session, readable or not.
DeriveKeys = Callable[[pkcs11.Session, bool], dict[K, pkcs11.SecretKey]]


@dataclass(frozen=True)
class Derivation:
    """What a kind of derived key may do once derived."""

    usage: Mapping[Attribute, bool]
    wrappable: bool = False  # extractable although sensitive: wrapped for PUT KEY

    def derive(self, master: pkcs11.SecretKey, data: bytes, *,
               readable: bool = False) -> pkcs11.SecretKey:
        return master.derive_key(
            KeyType.AES, DERIVED_KEY_BITS, mechanism=Mechanism.AES_ECB_ENCRYPT_DATA,
            mechanism_param=data,
            template={Attribute.TOKEN: False, Attribute.SENSITIVE: not readable,
                      Attribute.EXTRACTABLE: self.wrappable or readable, **self.usage},
        )


def current_master(session: pkcs11.Session, hsm: Hsm, role: KeyRole) -> pkcs11.SecretKey:
    """The newest version of the master key of ``role``."""
    return role_key(session, role, current_version(hsm, role))


@contextmanager
def derived_keys(hsm: Hsm, derive: DeriveKeys[K]) -> Iterator[dict[K, pkcs11.SecretKey]]:
    """The keys ``derive`` makes (not readable), for the duration of the ``with`` block."""
    with hsm.locked() as session:
        handles = derive(session, False)
    try:
        yield handles
    finally:
        with hsm.locked():
            for handle in handles.values():
                with suppress(pkcs11.PKCS11Error):  # a replaced session took them along
                    handle.destroy()


def export_for_card_maker(hsm: Hsm, derive: DeriveKeys[K]) -> dict[K, bytes]:
    """The values of the keys ``derive`` makes, as a card maker loads them into a new
    blank card (rig only: refused unless the token is a rig's marked test token); the
    readable keys are destroyed at once."""
    require_test_token(hsm)
    with hsm.locked() as session:
        keys = derive(session, True)
        try:
            return {name: bytes(key[Attribute.VALUE]) for name, key in keys.items()}
        finally:
            for key in keys.values():
                key.destroy()
