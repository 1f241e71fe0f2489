"""A minimal SCP03 card for protocol tests: INITIALIZE UPDATE, EXTERNAL AUTHENTICATE,
then protected commands that it echoes (prefixed with "OK"), reassembling ISO
command chains."""

from __future__ import annotations

from cardlib.apdu import CommandApdu, join_response
from cardlib.constants import CLA_CHAINING
from cardlib.errors import CardDataError
from cardlib.scp03.card import CardSecureChannel
from cardlib.scp03.keys import StaticKeyPrfs
from cardlib.status import CardStatus

KEYS = (bytes(range(16)), bytes(range(16, 32)))


class EchoScpCard:
    def __init__(self, keys: tuple[bytes, bytes] = KEYS, key_version: int = 0x30) -> None:
        self.scp = CardSecureChannel(StaticKeyPrfs.from_software_keys(*keys), key_version,
                                     bytes(10))
        self.chained = b""
        self.executed: list[CommandApdu] = []

    def process_apdu(self, raw: bytes) -> bytes:
        try:
            apdu = CommandApdu.decode(raw)
        except CardDataError:
            return join_response(b"", 0x6700)
        if apdu.ins == 0x50 and apdu.cla == 0x80:
            try:
                return join_response(self.scp.initialize_update(apdu), 0x9000)
            except CardStatus as refusal:
                return join_response(b"", refusal.sw)
        if apdu.ins == 0x82:
            return join_response(b"", 0x9000 if self.scp.external_authenticate(apdu) else 0x6982)
        self.scp.note_other_command()
        session = self.scp.session
        plain = session.unwrap_command(apdu) if session else None
        if session is None or plain is None:
            return join_response(b"", 0x6982)
        if plain.cla & CLA_CHAINING:
            self.chained += plain.data
            return session.wrap_response(b"", 0x9000)
        data, self.chained = self.chained + plain.data, b""
        self.executed.append(CommandApdu(plain.cla, plain.ins, plain.p1, plain.p2, data, plain.ne))
        return session.wrap_response(b"OK" + data, 0x9000)
