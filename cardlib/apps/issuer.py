"""Issuer security domain commands (ours; docs/protocol.md).

A blank card is in life-cycle OP_READY: its file structure exists (as delivered by a
card maker) and it accepts UPDATE BINARY, key generation and PIN setting. SET STATUS
to SECURED locks it; from then on it refuses all of these.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import tlv
from ..apdu import CommandApdu
from ..constants import (
    KEY_TYPE_AES,
    P2_RETURN_FCI,
    SELECT_BY_DF_NAME,
    TAG_AID,
    TAG_CARD_IMAGE_NUMBER,
    TAG_LIFE_CYCLE,
    Aid,
    Ins,
    LifeCycle,
)
from ..errors import CardDataError
from .base import ApplicationSession


@dataclass(frozen=True)
class IssuerInfo:
    card_serial: str
    life_cycle: LifeCycle

    def as_json(self) -> dict[str, str]:
        return {"card_serial": self.card_serial, "life_cycle": self.life_cycle.name}


class IssuerSession(ApplicationSession):
    """The GlobalPlatform issuer security domain: serial, life cycle, lock."""

    AID = Aid.ISSUER_SECURITY_DOMAIN

    def select(self) -> None:
        apdu = CommandApdu(0x00, Ins.SELECT, SELECT_BY_DF_NAME, P2_RETURN_FCI, self.aid, 256)
        self.channel.send(apdu, selecting_aid=True)

    def _get_data(self, tag: int) -> bytes:
        apdu = CommandApdu(0x80, Ins.GET_DATA, tag >> 8, tag & 0xFF, ne=256)
        return tlv.parse_expected(self.channel.send(apdu), tag, f"GET DATA {tag:04X}").value

    def read_serial(self) -> str:
        """GET DATA 0045: the card identification number, bare ASCII as on the real card
        (RC §3), or wrapped ``45 0F <digits>`` as our first cards answered."""
        apdu = CommandApdu(0x80, Ins.GET_DATA, TAG_CARD_IMAGE_NUMBER >> 8,
                           TAG_CARD_IMAGE_NUMBER & 0xFF, ne=256)
        raw = self.channel.send(apdu)
        if raw[:2] == bytes((TAG_CARD_IMAGE_NUMBER, 15)):
            raw = tlv.parse_expected(raw, TAG_CARD_IMAGE_NUMBER, "GET DATA 0045").value
        serial = raw.decode("ascii", "replace")
        if len(serial) != 15 or not serial.isdigit():
            raise CardDataError("card image number: expected 15 ASCII digits")
        return serial

    def read_info(self) -> IssuerInfo:
        serial = self.read_serial()
        state = self._get_data(TAG_LIFE_CYCLE)
        if len(state) != 1:
            raise CardDataError("life cycle: expected one byte")
        try:
            life_cycle = LifeCycle(state[0])
        except ValueError as exc:
            raise CardDataError(f"life cycle: unknown state {state[0]:02X}") from exc
        return IssuerInfo(serial, life_cycle)

    def put_key(self, target_aid: bytes, key_version: int,
                components: list[tuple[bytes, bytes]]) -> None:
        """PUT KEY (through this domain's secure channel): ENC, MAC, DEK of the target
        application, each already encrypted under this domain's DEK, with its KCV."""
        data = tlv.Tlv(TAG_AID, target_aid).encode() + bytes((key_version,))
        for wrapped, kcv in components:
            if len(wrapped) != 16 or len(kcv) != 3:
                raise ValueError("PUT KEY components are 16-byte wrapped keys with 3-byte KCVs")
            data += bytes((KEY_TYPE_AES, 0x11, 0x10)) + wrapped + b"\x03" + kcv
        answer = self.channel.send(CommandApdu(0x80, Ins.PUT_KEY, 0x00, 0x81, data, 256))
        expected = bytes((key_version,)) + b"".join(kcv for _, kcv in components)
        if answer != expected:
            raise CardDataError("PUT KEY: the card confirmed other key check values")

    def put_data(self, tag: int, value: bytes) -> None:
        """PUT DATA ``00 DA <tag>``: an MF-level GET DATA object (ours: personalisation,
        through this domain's SCP03 channel, blank cards only)."""
        self.channel.send(CommandApdu(0x00, Ins.PUT_DATA, tag >> 8, tag & 0xFF, value))

    def lock(self) -> None:
        """SET STATUS card life cycle -> SECURED (through the issuer SCP03 channel)."""
        self.channel.send(CommandApdu(0x80, Ins.SET_STATUS, 0x80, LifeCycle.SECURED))

    def wipe(self) -> None:
        """Ours: SET STATUS -> OP_READY erases every application (through the issuer
        SCP03 channel): a failed or returned card becomes blank again."""
        self.channel.send(CommandApdu(0x80, Ins.SET_STATUS, 0x80, LifeCycle.OP_READY))
