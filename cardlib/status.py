"""Status words as an ``IntEnum`` and the single place that turns them into exceptions."""

from __future__ import annotations

from enum import IntEnum

from . import errors


class SW(IntEnum):
    """ISO 7816-4 status words the project sends or interprets."""

    OK = 0x9000
    BYTES_AVAILABLE = 0x6100  # 61xx: xx more bytes, fetch with GET RESPONSE
    WRONG_LE = 0x6C00  # 6Cxx: resend with Le = xx
    VERIFY_FAILED = 0x63C0  # 63Cx: x tries left
    MEMORY_FAILURE = 0x6581
    SECURITY_ENVIRONMENT_FAULTY = 0x66F1  # SET SESSION KEY where no key delivery is set up
    WRONG_LENGTH = 0x6700
    LOGICAL_CHANNEL_NOT_SUPPORTED = 0x6881
    SECURE_MESSAGING_NOT_SUPPORTED = 0x6882
    COMMAND_INCOMPATIBLE = 0x6981  # with the file structure (e.g. an internal EF)
    SECURITY_STATUS_NOT_SATISFIED = 0x6982
    AUTH_METHOD_BLOCKED = 0x6983
    REFERENCE_DATA_NOT_USABLE = 0x6984
    CONDITIONS_NOT_SATISFIED = 0x6985
    COMMAND_NOT_ALLOWED = 0x6986
    SM_DATA_OBJECT_MISSING = 0x6987
    SM_DATA_OBJECT_INCORRECT = 0x6988
    SM_SESSION_ABSENT = 0x69FC  # real-card.md §10: SM command with no (or a destroyed) session
    WRONG_DATA = 0x6A80
    FUNCTION_NOT_SUPPORTED = 0x6A81
    FILE_NOT_FOUND = 0x6A82
    RECORD_NOT_FOUND = 0x6A83
    NOT_ENOUGH_MEMORY = 0x6A84
    INCORRECT_P1P2 = 0x6A86
    REFERENCED_DATA_NOT_FOUND = 0x6A88
    WRONG_P1P2 = 0x6B00  # also "offset beyond end of file" for READ BINARY
    INS_NOT_SUPPORTED = 0x6D00
    CLA_NOT_SUPPORTED = 0x6E00
    UNKNOWN = 0x6F00


class CardStatus(Exception):
    """Card side: raised inside a command handler to answer with status word ``sw``."""

    def __init__(self, sw: int) -> None:
        super().__init__(f"{sw:04X}")
        self.sw = sw


def raise_for_status(sw: int, *, selecting_aid: bool = False, reading: bool = False) -> None:
    """Raise the project's exception for a non-success status word.

    ``selecting_aid`` turns 6A82 into ``ApplicationNotFoundError``; ``reading`` turns
    6B00 into ``EndOfFileError``. Everything else maps the same way for every caller.
    """
    if sw == SW.OK:
        return
    if sw & 0xFFF0 == SW.VERIFY_FAILED:
        tries = sw & 0x0F
        if tries == 0:
            raise errors.PinBlockedError(sw)
        raise errors.InvalidPinError(sw, tries)
    if sw in (SW.AUTH_METHOD_BLOCKED, SW.REFERENCE_DATA_NOT_USABLE):
        raise errors.PinBlockedError(sw)
    if sw == SW.FILE_NOT_FOUND:
        if selecting_aid:
            raise errors.ApplicationNotFoundError(sw, "application not found on the card (6A82)")
        raise errors.FileNotFoundOnCardError(sw, "file not found on the card (6A82)")
    if sw == SW.SECURITY_STATUS_NOT_SATISFIED:
        raise errors.SecurityStatusNotSatisfiedError(
            sw, "security status not satisfied (6982): PIN or secure channel required"
        )
    if sw == SW.CONDITIONS_NOT_SATISFIED:
        raise errors.ConditionsNotSatisfiedError(
            sw, "conditions of use not satisfied (6985): the card's state forbids this"
        )
    if sw == SW.WRONG_P1P2 and reading:
        raise errors.EndOfFileError(sw, "offset beyond the end of the file (6B00)")
    raise errors.ApduError(sw)
