"""Errors of the HSM layer. python-pkcs11 exceptions have an empty ``str()``, so the
class name of the PKCS#11 error is carried in the message."""

from __future__ import annotations


class HsmError(Exception):
    """A PKCS#11 operation failed."""


class TokenNotFoundError(HsmError):
    """No token with the configured label in the configured module."""


class KeyNotFoundError(HsmError):
    """No key for the requested role in the token (run `juki hsm init`)."""


class HsmConfigError(HsmError):
    """The token configuration is missing or wrong (names the setting)."""
