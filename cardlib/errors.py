"""The one exception hierarchy of the card layer.

Every error a caller can get from card I/O is a ``CardError``. Status words become
exceptions in exactly one place (``cardlib.status.raise_for_status``); malformed card
data raises ``CardDataError`` naming what was malformed. No exception message ever
carries a PIN or key material.
"""

from __future__ import annotations


class CardError(Exception):
    """Base class of all card-layer errors."""


class TransportError(CardError):
    """The link to the reader or card failed (not a status word)."""


class PcscServiceError(TransportError):
    """The PC/SC service (pcscd) is not running or not reachable: a station fault, not
    a card fault."""


class CardRemovedError(TransportError):
    """The card left the reader in the middle of a flow."""


class ReaderBusyError(TransportError):
    """Another application holds the card (PC/SC sharing violation); usually brief."""


class NoCardError(TransportError):
    """No card was presented in the reader within the time allowed."""


class ReaderNotFoundError(TransportError):
    """The named reader does not exist."""


class CardDataError(CardError):
    """A response or file from the card is malformed (names the field)."""


class ApduError(CardError):
    """The card answered with a non-success status word."""

    def __init__(self, sw: int, message: str | None = None) -> None:
        self.sw = sw
        super().__init__(message or f"card returned status word {sw:04X}")


class ApplicationNotFoundError(ApduError):
    """SELECT by AID found no such application (6A82 on a DF name)."""


class FileNotFoundOnCardError(ApduError):
    """SELECT EF or READ named a file the card does not have (6A82)."""


class SecurityStatusNotSatisfiedError(ApduError):
    """The command needs a PIN or secure channel first (6982)."""


class ConditionsNotSatisfiedError(ApduError):
    """The card's state forbids the command (6985), e.g. a locked card."""


class InvalidPinError(ApduError):
    """Wrong PIN; ``tries_left`` tries remain before it blocks."""

    def __init__(self, sw: int, tries_left: int) -> None:
        self.tries_left = tries_left
        super().__init__(sw, f"wrong PIN: {tries_left} tries left")


class PinBlockedError(ApduError):
    """The PIN is blocked (no tries left)."""

    def __init__(self, sw: int) -> None:
        self.tries_left = 0
        super().__init__(sw, "PIN is blocked")


class EndOfFileError(ApduError):
    """READ BINARY offset beyond the end of the file (6B00)."""


class SecureMessagingError(CardError):
    """The secure channel failed: bad cryptogram, bad MAC or padding, closed session.

    Deliberately one message for MAC and padding failures (no padding oracle)."""


class ChainingError(CardError):
    """Response chaining misbehaved (61xx without end, or 6Cxx twice)."""
