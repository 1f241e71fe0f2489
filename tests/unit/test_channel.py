import logging

import pytest

from cardlib.apdu import CommandApdu
from cardlib.channel import APDU_LOG_LEVEL, MAX_GET_RESPONSE_ROUNDS, ApduChannel
from cardlib.errors import (
    ApplicationNotFoundError,
    ChainingError,
    ConditionsNotSatisfiedError,
    EndOfFileError,
    FileNotFoundOnCardError,
    InvalidPinError,
    PinBlockedError,
    SecurityStatusNotSatisfiedError,
)
from tests.helpers import ScriptedTransport

READ = CommandApdu(0x00, 0xB0, 0x00, 0x00, ne=256)


def test_61xx_is_followed_by_get_response_and_concatenated() -> None:
    answers = iter([(b"\x01" * 256, 0x6110), (b"\x02" * 16, 0x9000)])
    transport = ScriptedTransport(lambda _apdu: next(answers))
    data = ApduChannel(transport).send(READ)
    assert data == b"\x01" * 256 + b"\x02" * 16
    assert transport.sent[1].hex() == "00c0000010"


def test_61_00_asks_for_256_bytes() -> None:
    answers = iter([(b"", 0x6100), (b"\x03" * 256, 0x9000)])
    transport = ScriptedTransport(lambda _apdu: next(answers))
    assert len(ApduChannel(transport).send(READ)) == 256
    assert transport.sent[1].hex() == "00c0000000"


def test_card_answering_61xx_forever_is_cut_off() -> None:
    transport = ScriptedTransport(lambda _apdu: (b"\x00", 0x6101))
    with pytest.raises(ChainingError, match="61xx"):
        ApduChannel(transport).send(READ)
    assert len(transport.sent) == MAX_GET_RESPONSE_ROUNDS + 1


def test_6cxx_resends_exactly_once_with_corrected_le() -> None:
    answers = iter([(b"", 0x6C08), (b"\x07" * 8, 0x9000)])
    transport = ScriptedTransport(lambda _apdu: next(answers))
    assert ApduChannel(transport).send(READ) == b"\x07" * 8
    assert [a.hex() for a in transport.sent] == ["00b0000000", "00b0000008"]


def test_6cxx_twice_is_an_error() -> None:
    transport = ScriptedTransport(lambda _apdu: (b"", 0x6C08))
    with pytest.raises(ChainingError, match="twice"):
        ApduChannel(transport).send(READ)
    assert len(transport.sent) == 2


@pytest.mark.parametrize(
    ("sw", "kwargs", "error"),
    [
        (0x6A82, {"selecting_aid": True}, ApplicationNotFoundError),
        (0x6A82, {}, FileNotFoundOnCardError),
        (0x6982, {}, SecurityStatusNotSatisfiedError),
        (0x6985, {}, ConditionsNotSatisfiedError),
        (0x6B00, {"reading": True}, EndOfFileError),
        (0x6983, {}, PinBlockedError),
        (0x63C0, {}, PinBlockedError),
    ],
)
def test_status_words_become_project_errors(sw: int, kwargs: dict, error: type) -> None:
    channel = ApduChannel(ScriptedTransport(lambda _apdu: (b"", sw)))
    with pytest.raises(error) as info:
        channel.send(READ, **kwargs)
    assert info.value.sw == sw


def test_wrong_pin_carries_tries_left() -> None:
    channel = ApduChannel(ScriptedTransport(lambda _apdu: (b"", 0x63C2)))
    with pytest.raises(InvalidPinError) as info:
        channel.send(CommandApdu(0, 0x20, 0, 0x80, b"1234"), sensitive=True)
    assert info.value.tries_left == 2
    assert "1234" not in str(info.value)


def test_sensitive_data_is_redacted_in_the_apdu_log(caplog: pytest.LogCaptureFixture) -> None:
    channel = ApduChannel(ScriptedTransport(lambda _apdu: (b"", 0x9000)))
    with caplog.at_level(APDU_LOG_LEVEL, logger="cardlib.channel"):
        channel.send(CommandApdu(0, 0x20, 0, 0x80, b"9876"), sensitive=True)
        channel.send(CommandApdu(0, 0xA4, 4, 0x0C, b"\xd3\x92"))
    text = caplog.text
    assert b"9876".hex() not in text and "9876" not in text
    assert "redacted" in text
    assert "d392" in text  # non-sensitive data is shown
    assert any(r.levelno == APDU_LOG_LEVEL for r in caplog.records)
    logging.getLogger("cardlib.channel").setLevel(logging.NOTSET)
