"""AES-CMACs by keys that never leave the token: the operator sessions' MAC and the
provision log's per-entry MAC (each its own role).

A MAC names the key version it was made with, so a new version (rotation) does not
invalidate what the old one made while the old one is kept.
"""

from __future__ import annotations

from collections.abc import Iterable

import pkcs11
from pkcs11 import Mechanism

from .errors import KeyNotFoundError
from .keys import role_key
from .roles import KeyRole
from .token import Hsm


def mac(hsm: Hsm, version: int, data: bytes,
        role: KeyRole = KeyRole.OPERATOR_SESSION_MAC) -> bytes:
    """AES-CMAC of ``data`` under ``role`` version ``version``."""
    return hsm.call(lambda s: bytes(role_key(s, role, version)
                                    .sign(data, mechanism=Mechanism.AES_CMAC)))


def check_mac(hsm: Hsm, version: int, data: bytes, tag: bytes,
              role: KeyRole = KeyRole.OPERATOR_SESSION_MAC) -> bool:
    """True only if ``tag`` is the CMAC of ``data`` (compared inside the token)."""
    return first_bad_mac(hsm, version, [(data, tag)], role) is None


def first_bad_mac(hsm: Hsm, version: int, items: Iterable[tuple[bytes, bytes]],
                  role: KeyRole) -> int | None:
    """Position of the first (data, tag) whose tag is wrong, else None; one key lookup
    and one lock for the whole run (a log of a million entries)."""
    def check(session: pkcs11.Session) -> int | None:
        try:
            key = role_key(session, role, version)
        except KeyNotFoundError:
            return 0
        for position, (data, tag) in enumerate(items):
            try:
                if not key.verify(data, tag, mechanism=Mechanism.AES_CMAC):
                    return position
            except (pkcs11.SignatureInvalid, pkcs11.SignatureLenRange):
                return position
        return None

    return hsm.call(check)
