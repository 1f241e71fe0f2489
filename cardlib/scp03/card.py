"""The card side of SCP03: INITIALIZE UPDATE, EXTERNAL AUTHENTICATE, then a session.

A new INITIALIZE UPDATE ends any session; EXTERNAL AUTHENTICATE is accepted only
as the very next command after it, once (a replayed one finds no pending challenge or
the wrong one); any failed MAC ends the session.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from ..apdu import CommandApdu
from ..constants import SCP03_ID
from ..status import CardStatus
from .keys import CARD_CRYPTOGRAM, HOST_CRYPTOGRAM, SessionKeys, StaticKeyPrfs, cryptogram, session_keys
from .wrapping import VALID_LEVELS, SecureSession, SecurityLevel

I_RANDOM_CHALLENGE_RMAC_RENC = 0x60  # b6 R-MAC, b7 R-ENC supported; random challenge

ChallengeSource = Callable[[], tuple[bytes, bytes | None]]  # (card challenge, counter)


@dataclass
class _Pending:
    context: bytes
    keys: SessionKeys


def _random_challenge() -> tuple[bytes, bytes | None]:
    return secrets.token_bytes(8), None


class CardSecureChannel:
    def __init__(self, static: StaticKeyPrfs, key_version: int, diversification_data: bytes,
                 i_param: int = I_RANDOM_CHALLENGE_RMAC_RENC,
                 challenge_source: ChallengeSource = _random_challenge) -> None:
        if len(diversification_data) != 10:
            raise ValueError("key diversification data must be 10 bytes")
        self._static = static
        self.key_version = key_version
        self._diversification = diversification_data
        self._i_param = i_param
        self._challenge_source = challenge_source
        self._pending: _Pending | None = None
        self.session: SecureSession | None = None

    def reset(self) -> None:
        self._pending = None
        self.session = None

    def initialize_update(self, apdu: CommandApdu) -> bytes:
        self.reset()
        if apdu.p1 not in (0, self.key_version) or apdu.p2 != 0:
            raise CardStatus(0x6A88)  # no such key version
        if len(apdu.data) != 8:
            raise CardStatus(0x6700)
        card_challenge, counter = self._challenge_source()
        context = apdu.data + card_challenge
        keys = session_keys(self._static, context)
        self._pending = _Pending(context, keys)
        return (self._diversification + bytes((self.key_version, SCP03_ID, self._i_param))
                + card_challenge + cryptogram(keys, CARD_CRYPTOGRAM, context) + (counter or b""))

    def external_authenticate(self, apdu: CommandApdu) -> bool:
        pending, self._pending = self._pending, None
        self.session = None
        if pending is None or apdu.p1 not in VALID_LEVELS or len(apdu.data) != 16:
            return False
        session = SecureSession(pending.keys, SecurityLevel(apdu.p1))
        host_cryptogram = session.check_command_mac(apdu)
        expected = cryptogram(pending.keys, HOST_CRYPTOGRAM, pending.context)
        if host_cryptogram is None or not hmac.compare_digest(host_cryptogram, expected):
            return False
        self.session = session
        return True

    def note_other_command(self) -> None:
        """Any command other than EXTERNAL AUTHENTICATE right after INITIALIZE UPDATE
        cancels the pending authentication."""
        self._pending = None
