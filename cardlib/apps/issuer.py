"""Issuer security domain and personalisation commands (ours; docs/protocol.md).

A blank card is in life-cycle OP_READY: its file structure exists (as delivered by a
card maker) and it accepts UPDATE BINARY, key generation and PIN setting. SET STATUS
to SECURED locks it; from then on it refuses all of these.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa

from .. import tlv
from ..apdu import CommandApdu
from ..constants import (
    P2_RETURN_FCI,
    P2_SELECTED_KEY,
    SELECT_BY_DF_NAME,
    TAG_CARD_IMAGE_NUMBER,
    TAG_LIFE_CYCLE,
    Aid,
    Ins,
    LifeCycle,
)
from ..errors import CardDataError
from .base import ApplicationSession

WRITE_CHUNK = 0xF0
TAG_PUBLIC_KEY = 0x7F49
TAG_MODULUS = 0x81
TAG_EXPONENT = 0x82


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
        item, _ = tlv.parse_one(self.channel.send(apdu))
        if item.tag != tag:
            raise CardDataError(f"GET DATA {tag:04X}: card answered tag {item.tag:X}")
        return item.value

    def read_serial(self) -> str:
        serial = self._get_data(TAG_CARD_IMAGE_NUMBER).decode("ascii", "replace")
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
        data = tlv.Tlv(0x4F, target_aid).encode() + bytes((key_version,))
        for wrapped, kcv in components:
            if len(wrapped) != 16 or len(kcv) != 3:
                raise ValueError("PUT KEY components are 16-byte wrapped keys with 3-byte KCVs")
            data += bytes((0x88, 0x11, 0x10)) + wrapped + b"\x03" + kcv
        answer = self.channel.send(CommandApdu(0x80, Ins.PUT_KEY, 0x00, 0x81, data, 256))
        expected = bytes((key_version,)) + b"".join(kcv for _, kcv in components)
        if answer != expected:
            raise CardDataError("PUT KEY: the card confirmed other key check values")

    def lock(self) -> None:
        """SET STATUS card life cycle -> SECURED (through the issuer SCP03 channel)."""
        self.channel.send(CommandApdu(0x80, Ins.SET_STATUS, 0x80, LifeCycle.SECURED))

    def wipe(self) -> None:
        """Ours: SET STATUS -> OP_READY erases every application (through the issuer
        SCP03 channel): a failed or returned card becomes blank again."""
        self.channel.send(CommandApdu(0x80, Ins.SET_STATUS, 0x80, LifeCycle.OP_READY))


class PersonalisationSession(ApplicationSession):
    """Writes an application's files, keys and PINs while the card is OP_READY; give the
    application's ``aid``."""

    def write_file(self, fid: int, content: bytes) -> None:
        self.select_ef(fid)
        for offset in range(0, len(content), WRITE_CHUNK):
            chunk = content[offset : offset + WRITE_CHUNK]
            self.channel.send(CommandApdu(0x00, Ins.UPDATE_BINARY, offset >> 8, offset & 0xFF, chunk))

    def set_pin(self, pin_fid: int, pin: str) -> None:
        """The first value of a PIN: allowed without VERIFY only before locking."""
        self.change_pin(pin, pin_fid)

    def generate_rsa_key(self, key_fid: int) -> rsa.RSAPublicKey:
        """GENERATE ASYMMETRIC KEY PAIR into EF ``key_fid``; returns the public key."""
        self.select_ef(key_fid)
        apdu = CommandApdu(0x00, Ins.GENERATE_KEY_PAIR, 0x00, P2_SELECTED_KEY, ne=256)
        return decode_rsa_public_key_template(self.channel.send(apdu))


def decode_rsa_public_key_template(raw: bytes) -> rsa.RSAPublicKey:
    outer, end = tlv.parse_one(raw)
    if outer.tag != TAG_PUBLIC_KEY or end != len(raw):
        raise CardDataError("public key: expected one 7F49 template")
    children = {item.tag: item.value for item in outer.children()}
    if TAG_MODULUS not in children or TAG_EXPONENT not in children:
        raise CardDataError("public key: modulus 81 or exponent 82 missing")
    modulus = int.from_bytes(children[TAG_MODULUS], "big")
    exponent = int.from_bytes(children[TAG_EXPONENT], "big")
    if modulus.bit_length() != 2048 or exponent < 3 or exponent % 2 == 0:
        raise CardDataError("public key: not an RSA-2048 key with an odd exponent")
    return rsa.RSAPublicNumbers(exponent, modulus).public_key()


def encode_rsa_public_key_template(key: rsa.RSAPublicKey) -> bytes:
    numbers = key.public_numbers()
    modulus = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
    exponent = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
    return tlv.Tlv.build(TAG_PUBLIC_KEY, tlv.Tlv(TAG_MODULUS, modulus),
                         tlv.Tlv(TAG_EXPONENT, exponent)).encode()
