"""Resident-registry AP (住基AP, our design): the record code and its change history,
readable and changeable only inside an SCP03 session at level 33."""

from __future__ import annotations

import datetime as dt

from ..apdu import CommandApdu
from ..channel import ApduChannel
from ..constants import P1P2_CHANGE_CODE, Aid, Ins, RegistryFile
from ..registry_records import (
    CodeChange,
    decode_code,
    decode_history,
    encode_change_request,
)
from ..scp03.keys import StaticKeyPrfs
from .base import WritableApSession, open_secure


class ResidentRegistrySession(WritableApSession):
    """Use through ``open_registry``: its commands only work under secure messaging."""

    AID = Aid.RESIDENT_REGISTRY

    def read_code(self) -> str:
        return decode_code(self.read_tlv_file(RegistryFile.RECORD_CODE))

    def read_history(self) -> list[CodeChange]:
        return decode_history(self.read_tlv_file(RegistryFile.CHANGE_HISTORY))

    def change_code(self, new_code: str, date: dt.date, reason: str) -> None:
        data = encode_change_request(new_code, date, reason)
        self.channel.send(CommandApdu(0x00, Ins.PUT_DATA, P1P2_CHANGE_CODE >> 8,
                                      P1P2_CHANGE_CODE & 0xFF, data))


def open_registry(channel: ApduChannel, static: StaticKeyPrfs) -> ResidentRegistrySession:
    session = open_secure(channel, ResidentRegistrySession, static)
    assert isinstance(session, ResidentRegistrySession)
    return session
