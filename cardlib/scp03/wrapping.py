"""Per-command and per-response protection, the same code on both sides.

C-MAC: the 16-byte MAC chaining value starts at zero (EXTERNAL AUTHENTICATE is the
first MACed command); MAC = CMAC(S-MAC, chain ‖ header with CLA|04 and Lc+8 ‖ data);
the chain becomes the full MAC, the command carries its first 8 bytes.
C-DEC: data encrypted with AES-CBC(S-ENC) under ICV = AES(S-ENC, counter); the counter
starts at 1 after EXTERNAL AUTHENTICATE and advances on every command, with or
without data. R-MAC = CMAC(S-RMAC, chain ‖ data ‖ SW)[:8]. R-ENC: response ICV is the
command's counter with its first byte set to 80. A response is decrypted only after
its MAC checked; a bad MAC and bad padding give the same error.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from enum import IntFlag

from ..apdu import CommandApdu
from ..constants import AES_BLOCK, CLA_SECURE_MESSAGING
from ..errors import SecureMessagingError
from .crypto import aes_cbc_decrypt, aes_cbc_encrypt, aes_cmac, aes_ecb_block, pad, unpad
from .keys import SessionKeys

MAC_LENGTH = 8
INTEGRITY_ERROR = "secure messaging: response failed its integrity check"


class SecurityLevel(IntFlag):
    C_MAC = 0x01
    C_DEC = 0x02
    R_MAC = 0x10
    R_ENC = 0x20


VALID_LEVELS = {0x01, 0x03, 0x11, 0x13, 0x33}


def check_level(level: int) -> SecurityLevel:
    if level not in VALID_LEVELS:
        raise ValueError(f"SCP03 security level {level:02X} is not one of 01, 03, 11, 13, 33")
    return SecurityLevel(level)


def _mac_header(cla: int, apdu: CommandApdu, protected_length: int) -> bytes:
    """The header and Lc exactly as they will be encoded on the wire."""
    placeholder = CommandApdu(cla, apdu.ins, apdu.p1, apdu.p2, bytes(protected_length), apdu.ne)
    encoded = placeholder.encode()
    lc_size = 3 if placeholder.is_extended else 1
    return encoded[: 4 + lc_size]


def _counter_block(counter: int, response: bool) -> bytes:
    block = bytearray(counter.to_bytes(AES_BLOCK, "big"))
    if response:
        block[0] = 0x80
    return bytes(block)


@dataclass
class SecureSession:
    """State of one established SCP03 session (either side)."""

    keys: SessionKeys
    level: SecurityLevel
    chain: bytes = bytes(AES_BLOCK)
    counter: int = 1
    last_counter: int = 0
    open: bool = True

    def __repr__(self) -> str:
        return f"SecureSession(level={int(self.level):02X}, counter={self.counter}, open={self.open})"

    def _require_open(self) -> None:
        if not self.open:
            raise SecureMessagingError("secure messaging: the session is closed")

    def kill(self) -> None:
        self.open = False

    # ---- host: protect a command, check a response --------------------------------

    def mac_command(self, apdu: CommandApdu, data: bytes) -> CommandApdu:
        cla = apdu.cla | CLA_SECURE_MESSAGING
        mac_input = self.chain + _mac_header(cla, apdu, len(data) + MAC_LENGTH) + data
        self.chain = aes_cmac(self.keys.mac, mac_input)
        return CommandApdu(cla, apdu.ins, apdu.p1, apdu.p2, data + self.chain[:MAC_LENGTH], apdu.ne)

    def wrap_command(self, apdu: CommandApdu) -> CommandApdu:
        self._require_open()
        data = apdu.data
        if SecurityLevel.C_DEC in self.level and data:
            icv = aes_ecb_block(self.keys.enc, _counter_block(self.counter, response=False))
            data = aes_cbc_encrypt(self.keys.enc, icv, pad(data))
        self.last_counter, self.counter = self.counter, self.counter + 1
        return self.mac_command(apdu, data)

    def unwrap_response(self, data: bytes, sw: int) -> tuple[bytes, int]:
        self._require_open()
        if SecurityLevel.R_MAC not in self.level:
            return data, sw
        if not data and not _carries_rmac(sw):
            return data, sw  # the card protects no response that is an error status
        if len(data) < MAC_LENGTH:
            self.kill()
            raise SecureMessagingError(INTEGRITY_ERROR)
        body, received = data[:-MAC_LENGTH], data[-MAC_LENGTH:]
        expected = aes_cmac(self.keys.rmac, self.chain + body + sw.to_bytes(2, "big"))[:MAC_LENGTH]
        if not hmac.compare_digest(expected, received):
            self.kill()
            raise SecureMessagingError(INTEGRITY_ERROR)
        if SecurityLevel.R_ENC in self.level and body:
            plain = self._decrypt(body, self.last_counter, response=True)
            if plain is None:
                self.kill()
                raise SecureMessagingError(INTEGRITY_ERROR)
            body = plain
        return body, sw

    def _decrypt(self, data: bytes, counter: int, response: bool) -> bytes | None:
        if len(data) % AES_BLOCK:
            return None
        icv = aes_ecb_block(self.keys.enc, _counter_block(counter, response))
        return unpad(aes_cbc_decrypt(self.keys.enc, icv, data))

    # ---- card: check a command, protect a response -------------------------------

    def check_command_mac(self, apdu: CommandApdu) -> bytes | None:
        """The command's data without its C-MAC if the MAC is right (the chain moves
        on); else None and the session is killed. EXTERNAL AUTHENTICATE uses only this."""
        if not self.open or not apdu.cla & CLA_SECURE_MESSAGING or len(apdu.data) < MAC_LENGTH:
            self.kill()
            return None
        data, received = apdu.data[:-MAC_LENGTH], apdu.data[-MAC_LENGTH:]
        mac = aes_cmac(self.keys.mac, self.chain + _mac_header(apdu.cla, apdu, len(apdu.data)) + data)
        if not hmac.compare_digest(mac[:MAC_LENGTH], received):
            self.kill()
            return None
        self.chain = mac
        return data

    def unwrap_command(self, apdu: CommandApdu) -> CommandApdu | None:
        """The plain command, or None (and the session killed) if it fails any check."""
        data = self.check_command_mac(apdu)
        if data is None:
            return None
        self.last_counter, self.counter = self.counter, self.counter + 1
        if SecurityLevel.C_DEC in self.level and data:
            plain = self._decrypt(data, self.last_counter, response=False)
            if plain is None:
                self.kill()
                return None
            data = plain
        return CommandApdu(apdu.cla & ~CLA_SECURE_MESSAGING, apdu.ins, apdu.p1, apdu.p2, data, apdu.ne)

    def wrap_response(self, data: bytes, sw: int) -> bytes:
        if not _carries_rmac(sw) and not data:
            return sw.to_bytes(2, "big")
        if SecurityLevel.R_ENC in self.level and data:
            icv = aes_ecb_block(self.keys.enc, _counter_block(self.last_counter, response=True))
            data = aes_cbc_encrypt(self.keys.enc, icv, pad(data))
        if SecurityLevel.R_MAC in self.level:
            rmac = aes_cmac(self.keys.rmac, self.chain + data + sw.to_bytes(2, "big"))
            data += rmac[:MAC_LENGTH]
        return data + sw.to_bytes(2, "big")


def _carries_rmac(sw: int) -> bool:
    """Normal processing (9000) and warnings (62xx, 63xx) are protected; errors are not."""
    return sw == 0x9000 or sw >> 8 in (0x62, 0x63)
