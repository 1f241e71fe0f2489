"""Card-info input support AP (券面事項入力補助AP): the 4 information and the number."""

from __future__ import annotations

from ..constants import Aid, CardInfoFile
from ..records import FourInfo, decode_four_info, decode_individual_number
from .base import ApplicationSession, PinStatus


class CardInfoApSession(ApplicationSession):
    AID = Aid.CARD_INFO

    def pin_status(self, pin_fid: int = CardInfoFile.PIN) -> PinStatus:
        return super().pin_status(pin_fid)

    def verify_pin(self, pin: str, pin_fid: int = CardInfoFile.PIN) -> None:  # type: ignore[override]
        super().verify_pin(pin_fid, pin)

    def read_four_info(self) -> FourInfo:
        return decode_four_info(self.read_tlv_file(CardInfoFile.ATTRIBUTES))

    def read_individual_number(self) -> str:
        return decode_individual_number(self.read_tlv_file(CardInfoFile.INDIVIDUAL_NUMBER))
