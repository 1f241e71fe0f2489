"""A card reset or pulled between SCardConnect and the status call that reads its ATR is
a card error (CardRemovedError), not a raw pyscard exception that the CLI would report
as a station fault (found by bench/issuance.py's simulated operator)."""

from __future__ import annotations

import pytest
from smartcard.Exceptions import CardConnectionException

from cardlib import pcsc
from cardlib.errors import CardError, CardRemovedError


class ResetDuringConnect:
    def __init__(self) -> None:
        self.disconnected = False

    def connect(self, **_kwargs: object) -> None:
        return None

    def getATR(self) -> list[int]:
        raise CardConnectionException("Failed to get status: Card was reset. (0x80100068)")

    def disconnect(self) -> None:
        self.disconnected = True


class Reader:
    def __init__(self, connection: ResetDuringConnect) -> None:
        self.connection = connection

    def __str__(self) -> str:
        return "Virtual PCD 00 00"

    def createConnection(self) -> ResetDuringConnect:
        return self.connection


def test_a_reset_while_connecting_is_a_card_error(monkeypatch: pytest.MonkeyPatch) -> None:
    connection = ResetDuringConnect()
    monkeypatch.setattr(pcsc, "pyscard_readers", lambda: [Reader(connection)])
    with pytest.raises(CardRemovedError, match="reset or removed while connecting") as info:
        pcsc.PcscTransport("Virtual PCD 00 00")
    assert isinstance(info.value, CardError) and connection.disconnected
