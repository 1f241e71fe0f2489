"""Filler after the object of a transparent EF (RC §2.2): a physical read returns the
object followed by the file's unused bytes, ``FF`` (erased) on the cards seen; ``00``
is tolerated too. Anything else after the object is refused: a parser that stopped at
the object and ignored the rest could be handed a file carrying a second, hidden object."""

from __future__ import annotations

from . import tlv
from .errors import CardDataError

FILLER_BYTES = frozenset((0x00, 0xFF))


def check_filler(rest: bytes, what: str) -> None:
    """``rest`` (the bytes after the object) must be filler only."""
    for index, byte in enumerate(rest):
        if byte not in FILLER_BYTES:
            raise CardDataError(f"{what}: byte {byte:02X} after the object at +{index} "
                                "is not filler (FF/00)")


def object_and_filler(raw: bytes, what: str) -> tuple[bytes, bytes]:
    """Split a physical file into its first BER-TLV object and the filler after it."""
    try:
        end = tlv.header_length(raw)
    except CardDataError as exc:
        raise CardDataError(f"{what}: malformed BER-TLV ({exc})") from None
    if end > len(raw):
        raise CardDataError(f"{what}: object of {end} bytes runs past the end ({len(raw)} read)")
    check_filler(raw[end:], what)
    return bytes(raw[:end]), bytes(raw[end:])
