"""MACs over the station's operator sessions, by an AES key that never leaves the token.

The MAC names the key version it was made with, so rotating the key (a new version)
ends every session made under the old one only when the old version is removed.
"""

from __future__ import annotations

import pkcs11
from pkcs11 import Mechanism

from .errors import KeyNotFoundError
from .keys import latest_version, role_key
from .roles import KeyRole
from .token import Hsm


def current_version(hsm: Hsm) -> int:
    version = latest_version(hsm, KeyRole.OPERATOR_SESSION_MAC)
    if version is None:
        raise KeyNotFoundError("no operator-session MAC key in the token (run `juki hsm init`)")
    return version


def session_mac(hsm: Hsm, version: int, data: bytes) -> bytes:
    """AES-CMAC of ``data`` under the session key version ``version``."""
    return hsm.call(lambda s: bytes(role_key(s, KeyRole.OPERATOR_SESSION_MAC, version)
                                    .sign(data, mechanism=Mechanism.AES_CMAC)))


def check_session_mac(hsm: Hsm, version: int, data: bytes, tag: bytes) -> bool:
    """True only if ``tag`` is the CMAC of ``data`` (compared inside the token)."""
    def check(session: pkcs11.Session) -> bool:
        try:
            key = role_key(session, KeyRole.OPERATOR_SESSION_MAC, version)
        except KeyNotFoundError:
            return False
        try:
            return bool(key.verify(data, tag, mechanism=Mechanism.AES_CMAC))
        except (pkcs11.SignatureInvalid, pkcs11.SignatureLenRange):
            return False

    return hsm.call(check)
