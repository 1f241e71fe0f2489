"""The transport interface and the in-process transport.

A transport moves one APDU and its answer: ``send_and_receive(bytes) -> (data, sw)``.
It knows nothing of chaining or status words; ``cardlib.channel`` does that.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .apdu import split_response
from .errors import CardRemovedError


@runtime_checkable
class Transport(Protocol):
    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]: ...

    def close(self) -> None: ...


class CardSide(Protocol):
    """What the in-process transport talks to: a card that answers raw APDUs."""

    def process_apdu(self, apdu: bytes) -> bytes: ...


class InProcessTransport:
    """Hands APDUs straight to a card object in this process (unit tests, tools)."""

    def __init__(self, card: CardSide) -> None:
        self._card: CardSide | None = card

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]:
        if self._card is None:
            raise CardRemovedError("in-process card was removed")
        return split_response(self._card.process_apdu(apdu))

    def close(self) -> None:
        self._card = None
