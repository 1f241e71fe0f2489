"""PIN reset at the counter, host side: the format of each new PIN is checked before any
card I/O, the request names its document and reason, and an interrupted reset is rolled
back by recovery with the note the operator tells the resident (the value never stored)."""

from __future__ import annotations

import pytest

from tests.helpers import KeptEvents
from tools.counter.pin_reset import (
    NEW_PIN_SPECS,
    ROLLED_BACK_NOTE,
    TARGETS,
    check_request,
    settle_interrupted_pin_reset,
)
from tools.errors import PinInputError
from tools.station.pins import Pin


def test_every_resident_pin_is_a_target_with_its_own_pin_file_name() -> None:
    assert TARGETS == ("card-info", "jpki-auth", "jpki-sign", "juki", "common")
    assert [NEW_PIN_SPECS[t].name for t in TARGETS] == [
        "card_info_new", "jpki_auth_new", "jpki_sign_new", "juki_new", "common_new"]


@pytest.mark.parametrize("target", ["card-info", "jpki-auth", "juki", "common"])
@pytest.mark.parametrize("value, ok", [("1234", True), ("0000", True), ("123", False),
                                       ("12345", False), ("12a4", False), ("", False),
                                       ("１２３４", False)])
def test_four_digit_pins(target: str, value: str, ok: bool) -> None:
    spec = NEW_PIN_SPECS[target]
    if ok:
        assert isinstance(spec.check(value), Pin)
    else:
        with pytest.raises(PinInputError, match="4 digits") as info:
            spec.check(value)
        assert value not in str(info.value) or not value


@pytest.mark.parametrize("value, ok", [("ABC123", True), ("A" * 16, True), ("SIGN2026", True),
                                       ("ABC12", False), ("A" * 17, False),
                                       ("abc123", False), ("ABC-123", False),
                                       ("ABCＤ123", False)])
def test_the_jpki_sign_pin_format(value: str, ok: bool) -> None:
    spec = NEW_PIN_SPECS["jpki-sign"]
    if ok:
        assert spec.check(value).reveal() == value
    else:
        with pytest.raises(PinInputError, match="6 to 16 characters of A-Z and 0-9") as info:
            spec.check(value)
        assert value not in str(info.value)


def test_the_request_names_its_document_and_reason() -> None:
    assert check_request("juki", "  passport ", " forgotten ") == (
        "passport", "forgotten")
    with pytest.raises(PinInputError, match="identity-document"):
        check_request("juki", "   ", "forgotten")
    # the kind of document is recorded in the permanent event log, never its number
    for numbered in ("passport TK1234567", "運転免許証 第１２３号", "licence 42"):
        with pytest.raises(PinInputError, match="not its number"):
            check_request("juki", numbered, "forgotten")
    with pytest.raises(PinInputError, match="reason"):
        check_request("juki", "passport", "")
    with pytest.raises(PinInputError, match="--pin must be one of"):
        check_request("puk", "passport", "forgotten")


def test_an_interrupted_reset_is_rolled_back_with_the_note(registry) -> None:  # type: ignore[no-untyped-def]
    sink = KeptEvents()
    registry.event_sink = sink
    operation_id = registry.begin_operation("012345678901234", "pin-reset",
                                            {"target": "jpki-sign"}, "elsewhere:1")
    registry.interrupt_operation(operation_id, "CardRemovedError: card removed")
    operation = registry.operation(operation_id)
    assert operation.status == "interrupted" and operation.payload == {"target": "jpki-sign"}
    assert settle_interrupted_pin_reset(registry, operation) == ROLLED_BACK_NOTE
    assert registry.operation(operation_id).status == "rolled-back"
    assert registry.open_operation_of("012345678901234") is None
    last = sink.committed[-1]
    assert (last.event, last.reason, last.card_serial) == (
        "operation-rolled-back", "the PIN may or may not have been reset; reset it again",
        "012345678901234")
    assert dict(last.detail) == {"operation": operation_id, "kind": "pin-reset",
                                 "target": "jpki-sign"}
    with pytest.raises(ValueError, match="not a pin-reset"):
        settle_interrupted_pin_reset(registry, operation.__class__(
            **(operation.as_json() | {"kind": "renew"})))
