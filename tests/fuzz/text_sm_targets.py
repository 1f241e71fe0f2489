"""Fuzz targets: the card-info AP's secure messaging (80 AE, CLA 08; RC §4.7), the host's
transport fed a hostile card's answers, and the card side fed commands that are either
protected by the host's own code (then tampered with, sometimes) or raw."""

from __future__ import annotations

import functools

from cardlib.apdu import CommandApdu
from cardlib.channel import ApduChannel
from cardlib.constants import Ins
from cardlib.emulator.text_sm import CardInfoSecureMessaging
from cardlib.errors import CardError
from cardlib.text_sm import TextSmTransport, encrypt_object, oaep, session_key_plaintext

from .reader import Reader
from .registry import check, refusals, target

SEED = bytes(range(32))
KEY = SEED[:16]
PLAIN_COMMANDS = (
    CommandApdu(0x00, Ins.VERIFY, 0x00, 0x80, b"2468"),
    CommandApdu(0x00, Ins.SELECT, 0x02, 0x0C, b"\x00\x01"),
    CommandApdu(0x00, Ins.READ_BINARY, 0x00, 0x00, ne=17),
    CommandApdu(0x00, Ins.READ_BINARY, 0x00, 0x00, ne=65536),
)


@functools.cache
def _session_key_pair() -> tuple[object, bytes]:
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(65537, 2048)
    return private, private.public_key().encrypt(session_key_plaintext(SEED), oaep())


@target("text_sm_host", lambda: [bytes((3, 0x86, 0x11, 0x01)) + bytes(16)])
def text_sm_host(data: bytes) -> None:
    """The host's side under a card that answers anything: a result or a CardError."""
    from tests.helpers import ScriptedTransport

    reader = Reader(data)

    def answer(_apdu: bytes) -> tuple[bytes, int]:
        if reader.chance(3):  # a well-formed 86 object under some counter
            return encrypt_object(KEY, reader.byte() % 4 + 1, reader.sized(64)), 0x9000
        return reader.sized(300), reader.pick((0x9000, 0x6988, 0x69FC, 0x6100 | reader.byte()))

    inner = ApduChannel(ScriptedTransport(answer), max_get_response_rounds=4)
    channel = ApduChannel(TextSmTransport(inner, KEY), max_get_response_rounds=4)
    while reader.remaining:
        with refusals(CardError):
            channel.transceive(reader.pick(PLAIN_COMMANDS))


def _tampered(reader: Reader, apdu: CommandApdu) -> CommandApdu:
    data = bytearray(apdu.data)
    if data:
        data[reader.byte() % len(data)] ^= reader.byte() or 1
    return CommandApdu(apdu.cla, apdu.ins, apdu.p1, apdu.p2, bytes(data), apdu.ne)


def _card_session() -> CardInfoSecureMessaging:
    private, cryptogram = _session_key_pair()
    card = CardInfoSecureMessaging()
    check(card.set_session_key(private, cryptogram) == 0x9000, "SET SESSION KEY refused")  # type: ignore[arg-type]
    return card


@target("text_sm_card", lambda: [bytes(8), bytes((1, 1, 1, 2, 2))])
def text_sm_card(data: bytes) -> None:
    """Untouched protected commands unwrap to what the host protected and the answer
    comes back as sent; once the card refuses a cryptogram (6988 on bad padding) every
    later secure command is refused; unwrap never raises."""
    reader = Reader(data)
    card = _card_session()
    host_counter, destroyed = 0, False
    while reader.remaining:
        plain = reader.pick(PLAIN_COMMANDS)
        mode = reader.byte() % 4
        host_counter += 1
        wire = TextSmTransport._protect(KEY, host_counter, plain)
        if mode == 1:
            wire = _tampered(reader, wire)
        elif mode == 2:
            with refusals(ValueError):
                wire = CommandApdu(reader.pick((0x08, 0x09, 0x0C, 0x0B)), reader.byte(), reader.byte(),
                                   reader.byte(), reader.sized(80))
        result = card.unwrap(wire)
        if destroyed:
            check(isinstance(result, int), "a secure command was accepted after the session ended")
            continue
        if isinstance(result, int):
            destroyed = destroyed or (result == 0x6988 and wire.ins != Ins.READ_BINARY
                                      and not card.active)
            if card.counter != host_counter:
                return  # the two sides disagree on N from now on, by design
            continue
        if mode == 0:
            check((result.ins, result.p1, result.p2) == (plain.ins, plain.p1, plain.p2)
                  and (result.data == plain.data or plain.ins == Ins.READ_BINARY),
                  "an untouched protected command changed")
            body = reader.sized(200)
            response = card.wrap(body, 0x9000)
            if body:
                got = TextSmTransport._unprotect(KEY, host_counter, response[:-2])
                check(got == body, "protected answer round trip")
        if card.counter != host_counter:
            return
