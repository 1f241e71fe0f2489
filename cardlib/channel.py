"""Response chaining and status-word checking on top of a transport.

``61xx`` is followed by GET RESPONSE until the card stops asking, with a hard cap so a
card that answers ``61xx`` forever cannot hang the host; ``6Cxx`` is answered by
exactly one resend with the corrected Le. The traffic is logged at level ``APDU``
(below DEBUG) with the data of sensitive commands (PINs, keys) redacted.
"""

from __future__ import annotations

import logging

from .apdu import CommandApdu
from .constants import CLA_CHAINING, SHORT_MAX_LC, Ins
from .errors import ChainingError
from .status import SW, raise_for_status
from .transport import Transport

APDU_LOG_LEVEL = 5
logging.addLevelName(APDU_LOG_LEVEL, "APDU")
log = logging.getLogger(__name__)

MAX_GET_RESPONSE_ROUNDS = 256  # 256 x 256 bytes = 64 KiB, the largest extended Ne


def describe(apdu: CommandApdu, sensitive: bool) -> str:
    """One log line for a command; the data of a sensitive command is never shown."""
    text = f"{apdu.cla:02X} {apdu.ins:02X} {apdu.p1:02X} {apdu.p2:02X}"
    if apdu.data:
        body = f"<{len(apdu.data)} bytes redacted>" if sensitive else apdu.data.hex()
        text += f" [{len(apdu.data)}] {body}"
    if apdu.ne is not None:
        text += f" Le={apdu.ne}"
    return text


class ApduChannel:
    """Sends command APDUs over a transport, handling chaining; raises on bad SWs."""

    def __init__(self, transport: Transport, max_get_response_rounds: int = MAX_GET_RESPONSE_ROUNDS):
        self.transport = transport
        self.max_get_response_rounds = max_get_response_rounds

    def _exchange(self, apdu: CommandApdu, sensitive: bool) -> tuple[bytes, int]:
        tracing = log.isEnabledFor(APDU_LOG_LEVEL)  # formatting costs; skip it when off
        if tracing:
            log.log(APDU_LOG_LEVEL, ">> %s", describe(apdu, sensitive))
        data, sw = self.transport.send_and_receive(apdu.encode())
        if tracing:
            shown = f"<{len(data)} bytes redacted> " if sensitive and data else (
                data.hex() + " " if data else "")
            log.log(APDU_LOG_LEVEL, "<< %s%04X", shown, sw)
        return data, sw

    def _send_chain_head(self, apdu: CommandApdu, sensitive: bool) -> tuple[CommandApdu, int]:
        """Send all but the last 255-byte segment of ``apdu`` with the chaining bit (cards
        such as YubiKeys take no extended APDUs); return the last segment and the SW."""
        data = apdu.data
        while len(data) > SHORT_MAX_LC:
            segment = CommandApdu(apdu.cla | CLA_CHAINING, apdu.ins, apdu.p1, apdu.p2,
                                  data[:SHORT_MAX_LC])
            _, sw = self._exchange(segment, sensitive)
            if sw != SW.OK:
                return apdu, sw
            data = data[SHORT_MAX_LC:]
        return CommandApdu(apdu.cla, apdu.ins, apdu.p1, apdu.p2, data, apdu.ne), SW.OK

    def transceive(self, apdu: CommandApdu, *, sensitive: bool = False,
                   chained: bool = False) -> tuple[bytes, int]:
        """Send ``apdu`` (in short segments if ``chained``); follow 61xx and 6Cxx; return
        (all data, final SW) without raising."""
        if chained and len(apdu.data) > SHORT_MAX_LC:
            apdu, sw = self._send_chain_head(apdu, sensitive)
            if sw != SW.OK:
                return b"", sw
        data, sw = self._exchange(apdu, sensitive)
        if sw & 0xFF00 == SW.WRONG_LE:
            data, sw = self._exchange(apdu.with_ne((sw & 0xFF) or 256), sensitive)
            if sw & 0xFF00 == SW.WRONG_LE:
                raise ChainingError("card asked twice to correct Le (6Cxx)")
        collected = bytearray(data)
        rounds = 0
        while sw & 0xFF00 == SW.BYTES_AVAILABLE:
            rounds += 1
            if rounds > self.max_get_response_rounds:
                raise ChainingError(
                    f"card kept answering 61xx after {self.max_get_response_rounds} GET RESPONSE"
                )
            get_response = CommandApdu(apdu.cla & 0x03, Ins.GET_RESPONSE, 0, 0, ne=(sw & 0xFF) or 256)
            data, sw = self._exchange(get_response, sensitive)
            collected += data
        return bytes(collected), sw

    def send(
        self,
        apdu: CommandApdu,
        *,
        sensitive: bool = False,
        selecting_aid: bool = False,
        reading: bool = False,
        chained: bool = False,
    ) -> bytes:
        """Send ``apdu`` and return its data; any non-9000 SW raises the project's error."""
        data, sw = self.transceive(apdu, sensitive=sensitive, chained=chained)
        raise_for_status(sw, selecting_aid=selecting_aid, reading=reading)
        return data
