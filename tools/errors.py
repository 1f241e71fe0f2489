"""Application-level errors (card and HSM errors come from cardlib and hsm)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The exit status of ``juki`` (stable: other systems branch on it)."""

    OK = 0
    CHECK_FAILED = 1  # a check failed: card not genuine, chain, log, proof or consistency
    USAGE = 2  # bad input, usage, or a request the registry's rules refuse
    CARD = 3  # wrong PIN, unexpected status word, malformed card data, card not issuable
    HSM = 4
    STATION = 5  # station, rig, configuration, pcscd, a provision that cannot be recorded
    NO_CARD = 6  # no reader or no card
    DENIED = 7  # operator mode: no valid session, a missing scope; a refused login
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, the shell's convention)


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


class LogTamperedError(JukiError):
    """The provision log, a checkpoint or a proof's stored nodes are not what was signed
    (named in the message); nothing was reported as verified."""


class CardNotGenuineError(JukiError):
    """A card that had to prove itself before a read did not: counterfeit, suspended,
    revoked, expired or unknown. Names every failed check; nothing was read or released."""

    def __init__(self, claimed_serial: str | None, failed: list[tuple[str, str]]) -> None:
        self.claimed_serial = claimed_serial
        self.failed = failed
        checks = "; ".join(f"{name}: {detail}" for name, detail in failed)
        card = f"card {claimed_serial}" if claimed_serial else "the card"
        super().__init__(f"{card} is not genuine (failed {checks}); nothing was read or released")
