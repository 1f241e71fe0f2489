"""What every application session shares: SELECT, READ BINARY of TLV files, PIN status."""

from __future__ import annotations

from dataclasses import dataclass

from .. import tlv
from ..apdu import CommandApdu
from ..channel import ApduChannel
from ..constants import (
    P2_NO_RESPONSE_DATA,
    P2_SELECTED_KEY,
    SELECT_BY_DF_NAME,
    SELECT_EF_UNDER_DF,
    Ins,
)
from ..errors import CardDataError, EndOfFileError
from ..status import SW, raise_for_status

READ_CHUNK = 0xFF  # short Le; some cards refuse Le=00 (256) on READ BINARY
HEADER_PROBE = 8
MAX_FILE_SIZE = 0x7FFF  # READ BINARY P1 bit 8 must stay 0: 15-bit offsets


@dataclass(frozen=True)
class PinStatus:
    """Retry state of a PIN, read without spending a try."""

    tries_left: int | None  # None when the PIN is already verified in this session
    verified: bool
    blocked: bool

    def as_json(self) -> dict[str, object]:
        return {"tries_left": self.tries_left, "verified": self.verified, "blocked": self.blocked}


def pin_status_of(sw: int) -> PinStatus:
    """What the status word of an empty VERIFY says about a PIN (no try spent)."""
    if sw == SW.OK:
        return PinStatus(tries_left=None, verified=True, blocked=False)
    if sw & 0xFFF0 == SW.VERIFY_FAILED:
        tries = sw & 0x0F
        return PinStatus(tries_left=tries, verified=False, blocked=tries == 0)
    if sw in (SW.AUTH_METHOD_BLOCKED, SW.REFERENCE_DATA_NOT_USABLE):
        return PinStatus(tries_left=0, verified=False, blocked=True)
    raise_for_status(sw)
    raise CardDataError(f"PIN status: unexpected status word {sw:04X}")


class ApplicationSession:
    """Base of the per-application sessions; subclasses set ``AID`` (or pass ``aid``)."""

    AID: bytes = b""
    PIN_FID: int | None = None  # the application's usual PIN EF, if it has one

    def __init__(self, channel: ApduChannel, aid: bytes | None = None) -> None:
        self.channel = channel
        self.aid = bytes(aid if aid is not None else self.AID)

    def select(self) -> None:
        apdu = CommandApdu(0x00, Ins.SELECT, SELECT_BY_DF_NAME, P2_NO_RESPONSE_DATA, self.aid)
        self.channel.send(apdu, selecting_aid=True)

    def select_ef(self, fid: int) -> None:
        apdu = CommandApdu(0x00, Ins.SELECT, SELECT_EF_UNDER_DF, P2_NO_RESPONSE_DATA,
                           fid.to_bytes(2, "big"))
        self.channel.send(apdu)

    def read_binary(self, offset: int, length: int) -> bytes:
        if not 0 <= offset <= MAX_FILE_SIZE:
            raise ValueError(f"READ BINARY offset {offset} out of range")
        apdu = CommandApdu(0x00, Ins.READ_BINARY, offset >> 8, offset & 0xFF, ne=length)
        return self.channel.send(apdu, reading=True)

    def read_tlv_file(self, fid: int) -> bytes:
        """Read a BER-TLV file: a few header bytes, then exactly the announced rest."""
        self.select_ef(fid)
        head = self.read_binary(0, HEADER_PROBE)
        if not head:
            raise CardDataError(f"file {fid:04X} is empty")
        total = tlv.header_length(head)  # a file shorter than its own header is malformed
        if total > MAX_FILE_SIZE:
            raise CardDataError(f"file {fid:04X} announces {total} bytes, more than a file holds")
        data = bytearray(head[:total])
        while len(data) < total:
            try:
                chunk = self.read_binary(len(data), min(READ_CHUNK, total - len(data)))
            except EndOfFileError as exc:
                raise CardDataError(
                    f"file {fid:04X} ends at {len(data)} bytes but announces {total}"
                ) from exc
            if not chunk:
                raise CardDataError(f"file {fid:04X}: card returned no data at offset {len(data)}")
            data += chunk
        return bytes(data[:total])

    def _pin_fid(self, pin_fid: int | None) -> int:
        fid = pin_fid if pin_fid is not None else self.PIN_FID
        if fid is None:
            raise ValueError(f"{type(self).__name__} has no default PIN; name the PIN EF")
        return fid

    def pin_status(self, pin_fid: int | None = None) -> PinStatus:
        """Empty VERIFY: the retry counter, spending no try.

        A bare 9000 here means "already verified in this session", never a login.
        """
        self.select_ef(self._pin_fid(pin_fid))
        _, sw = self.channel.transceive(CommandApdu(0x00, Ins.VERIFY, 0x00, P2_SELECTED_KEY))
        return pin_status_of(sw)

    def change_pin(self, new_pin: str, pin_fid: int | None = None) -> None:
        """CHANGE REFERENCE DATA ``00 24 01 80``: after VERIFY (or before issuance)."""
        self.select_ef(self._pin_fid(pin_fid))
        apdu = CommandApdu(0x00, Ins.CHANGE_REFERENCE_DATA, 0x01, P2_SELECTED_KEY,
                           new_pin.encode("ascii"))
        self.channel.send(apdu, sensitive=True)

    def verify_pin(self, pin: str, pin_fid: int | None = None) -> None:
        """VERIFY the PIN (of EF ``pin_fid``); raises ``InvalidPinError`` with tries left."""
        if not pin:
            raise ValueError("PIN must not be empty")
        self.select_ef(self._pin_fid(pin_fid))
        apdu = CommandApdu(0x00, Ins.VERIFY, 0x00, P2_SELECTED_KEY, pin.encode("ascii"))
        self.channel.send(apdu, sensitive=True)
