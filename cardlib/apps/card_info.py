"""Card-info input support AP (券面事項入力補助AP): the 4 information and the number."""

from __future__ import annotations

from ..constants import Aid, CardInfoFile
from ..records import FourInfo, decode_four_info, decode_individual_number
from .base import ApplicationSession


class CardInfoApSession(ApplicationSession):
    AID = Aid.CARD_INFO
    PIN_FID = CardInfoFile.PIN

    def read_four_info(self) -> FourInfo:
        return decode_four_info(self.read_tlv_file(CardInfoFile.ATTRIBUTES))

    def read_individual_number(self) -> str:
        return decode_individual_number(self.read_tlv_file(CardInfoFile.INDIVIDUAL_NUMBER))
