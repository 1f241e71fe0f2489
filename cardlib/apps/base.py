"""What every application session shares: SELECT, READ BINARY of TLV files, PIN status;
the write commands of an application (files, keys, first PINs); and opening SCP03 to
any application."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa

from .. import tlv
from ..apdu import CommandApdu
from ..channel import ApduChannel
from ..constants import (
    P1_RESET_WITH_NEW_VALUE,
    P2_NO_RESPONSE_DATA,
    P2_SELECTED_KEY,
    RSA_2048_BYTES,
    SCP03_KVN,
    SELECT_BY_DF_NAME,
    SELECT_EF_UNDER_DF,
    SM_LEVEL_FULL,
    Ins,
)
from ..digestinfo import digest_info
from ..errors import CardDataError, EndOfFileError
from ..public_key import parse_rsa_public_key
from ..scp03.host import open_secure_channel
from ..scp03.keys import StaticKeyPrfs
from ..status import SW, raise_for_status

READ_CHUNK = 0xFF  # short Le; some cards refuse Le=00 (256) on READ BINARY
HEADER_PROBE = 8
MAX_FILE_SIZE = 0x7FFF  # READ BINARY P1 bit 8 must stay 0: 15-bit offsets
WRITE_CHUNK = 0xF0
END_OF_FILE_WARNING = 0x6282  # "end of file reached before Ne bytes" (myna-card)
RECORD_ABSOLUTE = 0x04  # READ/UPDATE RECORD P2 b3..b1: the record number is absolute
CLA_PROPRIETARY = 0x80
CHALLENGE_MAX = 255  # the card hashes it; one short Lc of DigestInfo either way


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

    def read_physical(self, fid: int, limit: int = MAX_FILE_SIZE) -> bytes:
        """SELECT ``fid``, then READ BINARY in chunks until a short chunk, 6B00 or 6282:
        the physical content, filler included (RC §2.2), at most ``limit`` bytes."""
        self.select_ef(fid)
        data = bytearray()
        while len(data) < limit:
            want = min(READ_CHUNK, limit - len(data))
            apdu = CommandApdu(0x00, Ins.READ_BINARY, len(data) >> 8, len(data) & 0xFF, ne=want)
            chunk, sw = self.channel.transceive(apdu)
            if sw == SW.WRONG_P1P2:
                break  # 6B00: offset past the end
            if sw != END_OF_FILE_WARNING:
                raise_for_status(sw, reading=True)
            data += chunk[:want]
            if sw == END_OF_FILE_WARNING or len(chunk) < want:
                break
        return bytes(data)

    def read_record(self, record: int, sfi: int | None = None) -> bytes:
        """READ RECORD ``00 B2 rec 04`` (the current EF) or ``00 B2 rec (sfi<<3|4)``."""
        if not 1 <= record <= 0xFE:
            raise ValueError(f"record number {record} out of range")
        if sfi is not None and not 1 <= sfi <= 30:
            raise ValueError(f"short EF id {sfi} out of range")
        p2 = RECORD_ABSOLUTE if sfi is None else (sfi << 3) | RECORD_ABSOLUTE
        return self.channel.send(CommandApdu(0x00, Ins.READ_RECORD, record, p2, ne=256),
                                 reading=True)

    def read_binary_sfi(self, sfi: int, offset: int, length: int) -> bytes:
        """READ BINARY by short EF id ``00 B0 (80|sfi) offset Le`` (the EF becomes current)."""
        if not 1 <= sfi <= 30 or not 0 <= offset <= 0xFF:
            raise ValueError("READ BINARY by SFI: sfi 1..30, offset 0..255")
        apdu = CommandApdu(0x00, Ins.READ_BINARY, 0x80 | sfi, offset, ne=length)
        return self.channel.send(apdu, reading=True)

    def presence_signature(self, challenge: bytes) -> bytes:
        """``80 2A 00 00`` over DigestInfo(SHA-256(challenge)) by the selected AP's
        presence key (surface ``001A``, card-info ``0013``), no credential (RC §4.6,
        §5.2): verifies as sha256WithRSAEncryption of ``challenge`` under the card key
        the AP's records certify (surface DF12 / DF24 / DF42, card-info DF51)."""
        if not 1 <= len(challenge) <= CHALLENGE_MAX:
            raise ValueError(f"a challenge is 1-{CHALLENGE_MAX} bytes")
        data = digest_info(hashes.SHA256(), hashlib.sha256(challenge).digest())
        apdu = CommandApdu(CLA_PROPRIETARY, Ins.COMPUTE_DIGITAL_SIGNATURE, 0x00, 0x00, data,
                           ne=256)
        signature = self.channel.send(apdu)
        if len(signature) != RSA_2048_BYTES:
            raise CardDataError(f"presence signature: {len(signature)} bytes, expected "
                                f"{RSA_2048_BYTES}")
        return signature

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


class WritableApSession(ApplicationSession):
    """An application session that also writes the application's files, generates its
    keys and sets its first PIN values; give the application's ``aid``. The card allows
    these only while it is blank (OP_READY), under SCP03 level 33."""

    def write_file(self, fid: int, content: bytes) -> None:
        self.select_ef(fid)
        for offset in range(0, len(content), WRITE_CHUNK):
            chunk = content[offset : offset + WRITE_CHUNK]
            self.channel.send(CommandApdu(0x00, Ins.UPDATE_BINARY, offset >> 8, offset & 0xFF, chunk))

    def erase_binary(self, fid: int) -> None:
        """ERASE BINARY ``00 0E 00 00``: EF ``fid`` back to its ``FF`` filler (in
        personalisation, or in the issuer domain's counter session on an issued card)."""
        self.select_ef(fid)
        self.channel.send(CommandApdu(0x00, Ins.ERASE_BINARY, 0x00, 0x00))

    def reset_retry_counter(self, pin_fid: int, value: bytes | str) -> None:
        """RESET RETRY COUNTER ``00 2C 02 80 Lc <new>``: PIN EF ``pin_fid`` gets ``value``
        (ASCII, as ``set_pin`` sends it) and its full retry counter (personalisation, or
        the counter session on an issued card). The value never reaches a log."""
        if isinstance(value, str):
            try:
                value = value.encode("ascii")
            except UnicodeEncodeError:
                raise ValueError("a PIN is ASCII (letters and digits)") from None
        if not value:
            raise ValueError("a new PIN value must not be empty")
        self.select_ef(pin_fid)
        apdu = CommandApdu(0x00, Ins.RESET_RETRY_COUNTER, P1_RESET_WITH_NEW_VALUE,
                           P2_SELECTED_KEY, bytes(value))
        self.channel.send(apdu, sensitive=True)

    def update_record(self, fid: int, record: int, content: bytes) -> None:
        """UPDATE RECORD ``00 DC <record> 04`` into record EF ``fid`` (ours: personalisation
        of the record EFs, blank cards only)."""
        self.select_ef(fid)
        self.channel.send(CommandApdu(0x00, Ins.UPDATE_RECORD, record, RECORD_ABSOLUTE, content))

    def set_pin(self, pin_fid: int, pin: str) -> None:
        """The first value of a PIN: allowed without VERIFY only before locking."""
        self.change_pin(pin, pin_fid)

    def generate_rsa_key(self, key_fid: int) -> rsa.RSAPublicKey:
        """GENERATE ASYMMETRIC KEY PAIR into EF ``key_fid``; returns the public key."""
        self.select_ef(key_fid)
        apdu = CommandApdu(0x00, Ins.GENERATE_KEY_PAIR, 0x00, P2_SELECTED_KEY, ne=256)
        return parse_rsa_public_key(self.channel.send(apdu))


def open_secure(channel: ApduChannel, session_class: type[ApplicationSession],
                static: StaticKeyPrfs, level: int = SM_LEVEL_FULL) -> ApplicationSession:
    """SELECT the application in the clear, open SCP03 on it, and return a session of
    ``session_class`` whose every command is protected."""
    session_class(channel).select()
    secure = open_secure_channel(channel, static, level, key_version=SCP03_KVN)
    return session_class(ApduChannel(secure))
