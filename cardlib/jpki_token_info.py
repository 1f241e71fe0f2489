"""JPKI AP EF 0006, the token information (RC §7.3): a PKCS#11 ``CK_TOKEN_INFO`` of 160
bytes with every ``CK_ULONG`` as 4-byte big-endian and the strings space-padded; and
EF 0008, which certificates exist (3 bytes, ``8F 8F 00`` with both, no filler).

Decoding accepts NUL padding as well as spaces (myna's test double pads with NULs);
encoding always pads with spaces, as the real card does.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .constants import JPKI_TOKEN_INDIVIDUAL_NUMBER_CARD, JPKI_TOKEN_INFO_LENGTH
from .errors import CardDataError

# label, manufacturerID, model, serialNumber, then 11 CK_ULONGs, two 2-byte versions, utcTime
_LAYOUT = struct.Struct(">32s32s16s16s11L2s2s16s")
_TEXT_FIELDS = (("label", 32), ("manufacturer_id", 32), ("model", 16), ("serial_number", 16))
CKF_RNG, CKF_LOGIN_REQUIRED = 0x0001, 0x0004
CKF_USER_PIN_INITIALIZED, CKF_TOKEN_INITIALIZED = 0x0008, 0x0400
REAL_CARD_FLAGS = CKF_RNG | CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED | CKF_TOKEN_INITIALIZED
UNAVAILABLE = 0xFFFFFFFF  # CK_UNAVAILABLE_INFORMATION
CERT_PRESENT, CERT_ABSENT = 0x8F, 0x00
CERT_AVAILABILITY_LENGTH = 3


@dataclass(frozen=True)
class TokenInfo:
    label: str
    manufacturer_id: str
    model: str
    serial_number: str
    flags: int = REAL_CARD_FLAGS
    max_session_count: int = 1
    session_count: int = 0
    max_rw_session_count: int = 1
    rw_session_count: int = 0
    max_pin_len: int = 16
    min_pin_len: int = 6
    total_public_memory: int = UNAVAILABLE
    free_public_memory: int = UNAVAILABLE
    total_private_memory: int = UNAVAILABLE
    free_private_memory: int = UNAVAILABLE
    hardware_version: str = "03"  # ASCII on physical cards (RC §7.3)
    firmware_version: str = "01"
    utc_time: str = "9" * 16  # the test card's filler

    @classmethod
    def for_card(cls, serial_number: str, manufacturer: str, model: str,
                 label: str = JPKI_TOKEN_INDIVIDUAL_NUMBER_CARD) -> TokenInfo:
        """The real card's values with our manufacturer, model and serial."""
        return cls(label, manufacturer, model, serial_number)

    def _ulongs(self) -> tuple[int, ...]:
        return (self.flags, self.max_session_count, self.session_count,
                self.max_rw_session_count, self.rw_session_count, self.max_pin_len,
                self.min_pin_len, self.total_public_memory, self.free_public_memory,
                self.total_private_memory, self.free_private_memory)

    def encode(self) -> bytes:
        texts = [_pad(getattr(self, name), size, name) for name, size in _TEXT_FIELDS]
        for value in self._ulongs():
            if not 0 <= value <= 0xFFFFFFFF:
                raise ValueError("token info: a CK_ULONG is out of range")
        return _LAYOUT.pack(*texts, *self._ulongs(),
                            _pad(self.hardware_version, 2, "hardware_version"),
                            _pad(self.firmware_version, 2, "firmware_version"),
                            _pad(self.utc_time, 16, "utc_time"))

    def as_json(self) -> dict[str, object]:
        return {"label": self.label, "manufacturer_id": self.manufacturer_id, "model": self.model,
                "serial_number": self.serial_number, "flags": self.flags,
                "max_pin_len": self.max_pin_len, "min_pin_len": self.min_pin_len,
                "hardware_version": self.hardware_version,
                "firmware_version": self.firmware_version}


JpkiTokenInfo = TokenInfo


def _pad(text: str, size: int, name: str) -> bytes:
    if len(text) > size or not text.isascii() or not text.isprintable():
        raise ValueError(f"token info: {name} must be at most {size} printable ASCII characters")
    return text.encode("ascii").ljust(size, b" ")


def _text(raw: bytes, name: str) -> str:
    trimmed = raw.rstrip(b" \x00")
    if not all(0x20 <= b < 0x7F for b in trimmed):
        raise CardDataError(f"JPKI token info (EF 0006): {name} is not printable ASCII")
    return trimmed.decode("ascii")


def encode_token_info(info: TokenInfo) -> bytes:
    return info.encode()


def decode_token_info(raw: bytes) -> TokenInfo:
    """EF 0006: exactly 160 bytes."""
    if len(raw) != JPKI_TOKEN_INFO_LENGTH:
        raise CardDataError(f"JPKI token info (EF 0006): {len(raw)} bytes, expected "
                            f"{JPKI_TOKEN_INFO_LENGTH}")
    fields = _LAYOUT.unpack(bytes(raw))
    texts = [_text(value, name) for value, (name, _) in zip(fields[:4], _TEXT_FIELDS, strict=True)]
    hardware, firmware, utc = (_text(value, name) for value, name in
                               zip(fields[15:], ("hardware_version", "firmware_version",
                                                 "utc_time"), strict=True))
    return TokenInfo(*texts, *fields[4:15], hardware, firmware, utc)


@dataclass(frozen=True)
class CertAvailability:
    """EF 0008: byte 0 the signing certificate, byte 1 the authentication certificate
    (``8F`` present, ``00`` absent), byte 2 unknown (``00`` on the cards seen)."""

    signing: bool
    authentication: bool
    reserved: int = 0

    def encode(self) -> bytes:
        return bytes((CERT_PRESENT if self.signing else CERT_ABSENT,
                      CERT_PRESENT if self.authentication else CERT_ABSENT, self.reserved))


def decode_cert_availability(raw: bytes) -> CertAvailability:
    what = "JPKI certificate availability (EF 0008)"
    if len(raw) != CERT_AVAILABILITY_LENGTH:
        raise CardDataError(f"{what}: {len(raw)} bytes, expected {CERT_AVAILABILITY_LENGTH}")
    for index, name in ((0, "byte 0 (signing)"), (1, "byte 1 (authentication)")):
        if raw[index] not in (CERT_PRESENT, CERT_ABSENT):
            raise CardDataError(f"{what}: {name} is {raw[index]:02X}, expected 8F or 00")
    return CertAvailability(raw[0] == CERT_PRESENT, raw[1] == CERT_PRESENT, raw[2])
