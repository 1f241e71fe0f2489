"""ISO 7816-4 command and response APDUs, short and extended length.

``CommandApdu.encode`` picks the short form whenever Lc and Ne allow it and the
extended form otherwise; ``CommandApdu.decode`` is used by the card side and accepts
exactly the four ISO cases in either form.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .constants import SHORT_MAX_LC
from .errors import CardDataError

SHORT_MAX_NE = 256
EXTENDED_MAX_LC = 65535
EXTENDED_MAX_NE = 65536


@dataclass(frozen=True)
class CommandApdu:
    """A command APDU. ``ne`` is the expected response length (1..65536) or None.
    ``extended``: the APDU was (or must be) sent in the extended-length form even where a
    short one would do (a card may answer the two forms differently: real-card.md §2.1)."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    ne: int | None = None
    extended: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            value = getattr(self, name)
            if not 0 <= value <= 0xFF:
                raise ValueError(f"APDU {name} must be one byte, got {value}")
        if len(self.data) > EXTENDED_MAX_LC:
            raise ValueError(f"APDU data too long: {len(self.data)} > {EXTENDED_MAX_LC}")
        if self.ne is not None and not 1 <= self.ne <= EXTENDED_MAX_NE:
            raise ValueError(f"APDU Ne must be 1..{EXTENDED_MAX_NE}, got {self.ne}")

    @property
    def is_extended(self) -> bool:
        return (self.extended or len(self.data) > SHORT_MAX_LC
                or (self.ne is not None and self.ne > SHORT_MAX_NE))

    def with_ne(self, ne: int) -> CommandApdu:
        return CommandApdu(self.cla, self.ins, self.p1, self.p2, self.data, ne, self.extended)

    def encode(self) -> bytes:
        header = bytes((self.cla, self.ins, self.p1, self.p2))
        if not self.is_extended:
            body = b""
            if self.data:
                body += bytes((len(self.data),)) + self.data
            if self.ne is not None:
                body += bytes((self.ne % 256,))
            return header + body
        body = b"\x00"
        if self.data:
            body += len(self.data).to_bytes(2, "big") + self.data
        if self.ne is not None:
            body += (self.ne % 65536).to_bytes(2, "big")
        return header + body

    @classmethod
    def decode(cls, raw: bytes) -> CommandApdu:
        """Parse a C-APDU; raise ``CardDataError`` naming the length rule it breaks."""
        if len(raw) < 4:
            raise CardDataError(f"command APDU shorter than its 4-byte header ({len(raw)} bytes)")
        cla, ins, p1, p2 = raw[:4]
        body = raw[4:]
        if not body:
            return cls(cla, ins, p1, p2)
        if len(body) == 1:
            return cls(cla, ins, p1, p2, ne=body[0] or 256)
        if body[0] != 0:
            lc = body[0]
            if len(body) == 1 + lc:
                return cls(cla, ins, p1, p2, bytes(body[1:]))
            if len(body) == 2 + lc:
                return cls(cla, ins, p1, p2, bytes(body[1:-1]), body[-1] or 256)
            raise CardDataError(f"short APDU: Lc={lc} does not match body length {len(body)}")
        if len(body) == 3:
            return cls(cla, ins, p1, p2, ne=int.from_bytes(body[1:3], "big") or 65536,
                       extended=True)
        lc = int.from_bytes(body[1:3], "big")
        if lc == 0:
            raise CardDataError("extended APDU with Lc=0")
        if len(body) == 3 + lc:
            return cls(cla, ins, p1, p2, bytes(body[3:]), extended=True)
        if len(body) == 5 + lc:
            ne = int.from_bytes(body[-2:], "big") or 65536
            return cls(cla, ins, p1, p2, bytes(body[3:-2]), ne, extended=True)
        raise CardDataError(f"extended APDU: Lc={lc} does not match body length {len(body)}")


def split_response(raw: bytes) -> tuple[bytes, int]:
    """Split an R-APDU into (data, SW); raise ``CardDataError`` if it has no SW."""
    if len(raw) < 2:
        raise CardDataError(f"response APDU shorter than its 2-byte status word ({len(raw)} bytes)")
    return bytes(raw[:-2]), int.from_bytes(raw[-2:], "big")


def join_response(data: bytes, sw: int) -> bytes:
    return bytes(data) + sw.to_bytes(2, "big")
