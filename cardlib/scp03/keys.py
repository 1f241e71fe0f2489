"""The SCP03 session key schedule and the authentication cryptograms."""

from __future__ import annotations

from dataclasses import dataclass

from .crypto import aes_cmac
from .kdf import Prf, scp03_derive

CARD_CRYPTOGRAM = 0x00
HOST_CRYPTOGRAM = 0x01
CARD_CHALLENGE = 0x02
S_ENC = 0x04
S_MAC = 0x06
S_RMAC = 0x07
CRYPTOGRAM_BITS = 64


@dataclass(frozen=True)
class SessionKeys:
    enc: bytes
    mac: bytes
    rmac: bytes

    def __repr__(self) -> str:
        return "SessionKeys(<redacted>)"


@dataclass(frozen=True)
class StaticKeyPrfs:
    """AES-CMAC under each static key (ENC, MAC), wherever those keys live."""

    enc: Prf
    mac: Prf
    key_bits: int

    @classmethod
    def from_software_keys(cls, enc: bytes, mac: bytes) -> StaticKeyPrfs:
        """For the card side and known-answer tests, where the keys are in memory."""
        if len(enc) != len(mac) or len(enc) not in (16, 24, 32):
            raise ValueError("SCP03 static keys must be AES-128/192/256 of one size")
        return cls(lambda data: aes_cmac(enc, data), lambda data: aes_cmac(mac, data), len(enc) * 8)

    def __repr__(self) -> str:
        return f"StaticKeyPrfs(AES-{self.key_bits})"


def session_keys(static: StaticKeyPrfs, context: bytes) -> SessionKeys:
    bits = static.key_bits
    return SessionKeys(
        enc=scp03_derive(static.enc, S_ENC, context, bits),
        mac=scp03_derive(static.mac, S_MAC, context, bits),
        rmac=scp03_derive(static.mac, S_RMAC, context, bits),
    )


def cryptogram(keys: SessionKeys, constant: int, context: bytes) -> bytes:
    return scp03_derive(lambda data: aes_cmac(keys.mac, data), constant, context, CRYPTOGRAM_BITS)
