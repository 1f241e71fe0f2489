"""Opening an SCP03 session from the host, and the secure transport it yields.

The card cryptogram is checked (in constant time) before EXTERNAL AUTHENTICATE is
sent: a card without the right keys learns nothing from us. Every host challenge is
fresh, so a replayed INITIALIZE UPDATE response cannot verify.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from ..apdu import CommandApdu
from ..channel import ApduChannel
from ..constants import CLA_CHAINING, SCP03_ID, Ins
from ..errors import CardDataError, SecureMessagingError
from .keys import CARD_CRYPTOGRAM, HOST_CRYPTOGRAM, StaticKeyPrfs, cryptogram, session_keys
from .wrapping import SecureSession, check_level

HOST_CHALLENGE_LENGTH = 8
# 239 plain bytes pad to 240, + 8 MAC = 248: the most that stays a short APDU.
MAX_PLAIN_PER_LINK = 239


@dataclass(frozen=True)
class InitializeUpdateResponse:
    diversification_data: bytes
    key_version: int
    scp_id: int
    i_param: int
    card_challenge: bytes
    card_cryptogram: bytes
    sequence_counter: bytes | None

    @classmethod
    def parse(cls, data: bytes) -> InitializeUpdateResponse:
        if len(data) not in (29, 32):
            raise CardDataError(f"INITIALIZE UPDATE response: {len(data)} bytes, expected 29 or 32")
        if data[11] != SCP03_ID:
            raise CardDataError(f"INITIALIZE UPDATE response: SCP {data[11]:02X}, expected 03")
        return cls(data[:10], data[10], data[11], data[12], data[13:21], data[21:29],
                   data[29:32] if len(data) == 32 else None)


class Scp03Transport:
    """A transport that protects every command and checks every response.

    It sits on an ``ApduChannel`` so that 61xx/6Cxx handling happens under secure
    messaging, and is itself wrapped in an ``ApduChannel`` by the caller."""

    def __init__(self, channel: ApduChannel, session: SecureSession) -> None:
        self._channel = channel
        self.session = session

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]:
        """Protect and send; data longer than fits one protected short APDU goes as an
        ISO command chain (CLA b5), every link protected on its own."""
        plain = CommandApdu.decode(apdu)
        links = [plain.data[i:i + MAX_PLAIN_PER_LINK]
                 for i in range(0, len(plain.data), MAX_PLAIN_PER_LINK)] or [b""]
        for link in links[:-1]:
            chained = CommandApdu(plain.cla | CLA_CHAINING, plain.ins, plain.p1, plain.p2, link)
            data, sw = self._exchange(chained)
            if sw != 0x9000:
                return data, sw
        last = CommandApdu(plain.cla, plain.ins, plain.p1, plain.p2, links[-1], plain.ne)
        return self._exchange(last)

    def _exchange(self, plain: CommandApdu) -> tuple[bytes, int]:
        # The plain command is logged (redacted if sensitive) by the channel above; the
        # protected form may carry a PIN in clear at levels without C-DEC: never shown.
        data, sw = self._channel.transceive(self.session.wrap_command(plain), sensitive=True)
        return self.session.unwrap_response(data, sw)

    def close(self) -> None:
        self.session.kill()


def open_secure_channel(
    channel: ApduChannel,
    static: StaticKeyPrfs,
    level: int,
    key_version: int = 0,
    host_challenge: bytes | None = None,
) -> Scp03Transport:
    """INITIALIZE UPDATE + EXTERNAL AUTHENTICATE; returns the protected transport."""
    security = check_level(level)
    challenge = host_challenge if host_challenge is not None else secrets.token_bytes(
        HOST_CHALLENGE_LENGTH)
    if len(challenge) != HOST_CHALLENGE_LENGTH:
        raise ValueError("host challenge must be 8 bytes")
    response = InitializeUpdateResponse.parse(channel.send(
        CommandApdu(0x80, Ins.INITIALIZE_UPDATE, key_version, 0x00, challenge, 256)))
    if key_version and response.key_version != key_version:
        raise SecureMessagingError(
            f"card answered with key version {response.key_version:02X}, not {key_version:02X}")
    context = challenge + response.card_challenge
    keys = session_keys(static, context)
    if not hmac.compare_digest(cryptogram(keys, CARD_CRYPTOGRAM, context), response.card_cryptogram):
        raise SecureMessagingError(
            "card cryptogram does not verify: the card does not hold the expected keys")
    session = SecureSession(keys, security)
    authenticate = session.mac_command(
        CommandApdu(0x80, Ins.EXTERNAL_AUTHENTICATE, int(security), 0x00),
        cryptogram(keys, HOST_CRYPTOGRAM, context))
    channel.send(authenticate)
    return Scp03Transport(channel, session)
