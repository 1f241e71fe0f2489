"""Application-level errors (card and HSM errors come from cardlib and hsm)."""

from __future__ import annotations


class JukiError(Exception):
    """Base of the tools' own errors; the CLI maps each subclass to an exit code."""


class RequestError(JukiError):
    """An issuance request is invalid; names the field and the rule it breaks."""

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        self.rule = rule
        super().__init__(f"request field {field!r}: {rule}")


class PinInputError(JukiError):
    """PINs could not be obtained or have the wrong format (never contains a PIN)."""


class IssuanceError(JukiError):
    """The card cannot be issued (not blank, already registered, ...)."""


class RigError(JukiError):
    """The local test rig could not be brought up or down."""


class StationConfigError(JukiError):
    """The station home or its configuration is missing or wrong."""


class PermissionDeniedError(JukiError):
    """The station is in operator mode and the caller may not run this command
    (no session, an expired one, or a missing scope); the denial is recorded."""


class LoginError(JukiError):
    """An operator login was refused (names why, never the PIN)."""


class ProvisionNotRecordedError(JukiError):
    """The provision log could not be written, so nothing was released."""
