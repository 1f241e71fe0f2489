"""Fuzz target: the personalisation commands of a blank resident card, which the card
takes only under the issuer domain's SCP03 level-33 session. The session is opened with
the test transport keys by the host's own code, then every fuzzed command goes through
it (wrapped, MACed, encrypted), so the fuzz reaches UPDATE BINARY/RECORD, PUT DATA,
PUT KEY, GENERATE KEY PAIR, SET STATUS and the rest. Invariants as for the other card
targets: an answer ending in a status word every time, no card OS error."""

from __future__ import annotations

from cardlib.apdu import CommandApdu
from cardlib.channel import ApduChannel
from cardlib.constants import Ins
from cardlib.errors import CardError
from cardlib.transport import InProcessTransport

from .card_targets import _blank_state, _resident_card, _send, decoded_commands, no_card_os_errors
from .reader import Reader
from .registry import check, target


class CheckedCard:
    """The card as the in-process reader sees it, each answer checked on the way."""

    def __init__(self, card: object) -> None:
        self.card = card

    def process_apdu(self, raw: bytes) -> bytes:
        answer = _send(self.card, raw)
        assert answer is not None
        return answer

    def __getattr__(self, name: str) -> object:  # atr, power_on, power_off, reset
        return getattr(self.card, name)


def _seeds() -> list[bytes]:
    update = CommandApdu(0x00, Ins.UPDATE_BINARY, 0, 0, b"\xff\x10\x00").encode()
    select = CommandApdu(0x00, Ins.SELECT, 0x04, 0x0C, bytes.fromhex("D3921000310001010408")).encode()
    return [bytes((220, len(select))) + select + bytes((220, len(update))) + update, bytes(range(96))]


@target("emulator_personalisation", _seeds)
def emulator_personalisation(data: bytes) -> None:
    from cardlib.emulator.profiles import blank_resident_card
    from tests.helpers import TRANSPORT_KEYS, personalising

    card = _resident_card(_blank_state(tuple(TRANSPORT_KEYS.items()), blank_resident_card))
    reader = Reader(data)
    with no_card_os_errors():
        card.power_on()  # type: ignore[attr-defined]
        secure = personalising(ApduChannel(InProcessTransport(CheckedCard(card))))
        for apdu in decoded_commands(reader):
            if apdu.ins == Ins.GENERATE_KEY_PAIR and reader.byte() % 4:
                continue  # RSA-2048 generation is slow: one in four reaches the card
            try:
                secure.transceive(apdu)
            except CardError:
                continue


class _VpcdStream:
    """What ``vpcd.serve`` needs of a socket: the input as vpcd's byte stream, the
    frames the card sends kept."""

    def __init__(self, data: bytes) -> None:
        self.data, self.sent = data, bytearray()

    def setsockopt(self, *_args: object) -> None: ...

    def recv(self, size: int) -> bytes:
        chunk, self.data = self.data[:size], self.data[size:]
        return chunk

    def sendall(self, frame: bytes) -> None:
        self.sent += frame


@target("emulator_vpcd_link", lambda: [bytes.fromhex("000104000102000100000500a4040c00"), bytes(9)])
def emulator_vpcd_link(data: bytes) -> None:
    """The card's end of the vpcd protocol (2-byte length frames; 1-byte control
    frames for ATR, power and reset) fed any stream: it ends at the stream's end and
    every frame it sends is a length and that many bytes (a status word for an APDU)."""
    from cardlib.emulator.vpcd import serve

    from .card_targets import personalised_resident_state

    card = _resident_card(personalised_resident_state())
    stream = _VpcdStream(data)
    with no_card_os_errors():
        serve(CheckedCard(card), stream)  # type: ignore[arg-type]
    sent = bytes(stream.sent)
    while sent:
        size = int.from_bytes(sent[:2], "big")
        check(2 <= size <= len(sent) - 2, f"a frame of {size} bytes with {len(sent) - 2} left")
        sent = sent[2 + size :]
