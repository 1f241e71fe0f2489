"""Common AP (共通AP): the card-info record and the INTERNAL AUTHENTICATE key."""

from __future__ import annotations

from ..apdu import CommandApdu
from ..constants import P2_SELECTED_KEY, RSA_2048_BYTES, Aid, CommonFile, Ins
from ..errors import CardDataError
from ..records import CardInfoRecord, decode_card_info_record
from .base import ApplicationSession

MAX_CHALLENGE = 255


class CommonApSession(ApplicationSession):
    AID = Aid.COMMON

    def read_card_info(self) -> CardInfoRecord:
        """Record 1 of EF 0001: SELECT, then ``00 B2 01 04`` (real-card.md §8)."""
        self.select_ef(CommonFile.CARD_INFO_RECORD)
        return decode_card_info_record(self.read_record(1))

    def internal_authenticate(self, challenge: bytes) -> bytes:
        """INTERNAL AUTHENTICATE with the card's key: sha256WithRSAEncryption over
        ``challenge``. No PIN. The caller must already know the public key."""
        if not 1 <= len(challenge) <= MAX_CHALLENGE:
            raise ValueError(f"challenge must be 1..{MAX_CHALLENGE} bytes")
        apdu = CommandApdu(0x00, Ins.INTERNAL_AUTHENTICATE, 0x00,  # 00 88 00 99: key 0019 by SFI
                           P2_SELECTED_KEY | CommonFile.AUTH_KEY, challenge, 256)
        signature = self.channel.send(apdu)
        if len(signature) != RSA_2048_BYTES:
            raise CardDataError(
                f"INTERNAL AUTHENTICATE: expected a {RSA_2048_BYTES}-byte signature, "
                f"got {len(signature)}"
            )
        return signature
