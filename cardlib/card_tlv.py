"""How the resident card writes BER-TLV, and the filler after a file's object (RC §2.2).

Lengths: short form below 128, ``82 hh ll`` for every longer value (measured for ≥ 256;
for 128–255 the ``82 00 xx`` form is inferred from EF ``0005``'s ``FF 40 82 00 9F``,
RC §2.2 [D][H]); the decoders accept ``81 xx`` too.

Filler: a physical read returns the object followed by the file's unused bytes, ``FF``
(erased) on the cards seen; ``00`` is tolerated too. Anything else after the object is
refused: a parser that stopped at the object and ignored the rest could be handed a file
carrying a second, hidden object.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import tlv
from .errors import CardDataError

FILLER_BYTES = frozenset((0x00, 0xFF))


def card_length(length: int) -> bytes:
    """The card's length field: short form below 128, else ``82 hh ll``."""
    if not 0 <= length <= 0xFFFF:
        raise ValueError(f"length {length} out of range for a card file")
    return bytes((length,)) if length < 0x80 else b"\x82" + length.to_bytes(2, "big")


def card_tlv(tag: int, value: bytes) -> bytes:
    """One data object with the card's length form."""
    return tlv.encode_tag(tag) + card_length(len(value)) + bytes(value)


def check_filler(rest: bytes, what: str) -> None:
    """``rest`` (the bytes after the object) must be filler only."""
    for index, byte in enumerate(rest):
        if byte not in FILLER_BYTES:
            raise CardDataError(f"{what}: byte {byte:02X} after the object at +{index} "
                                "is not filler (FF/00)")


def object_and_filler(raw: bytes, tag: int, what: str) -> tuple[tlv.Tlv, int]:
    """The first object of a (trimmed or physical) file, which must carry ``tag``, and the
    size of its header; everything after the object must be filler."""
    raw = bytes(raw)
    try:
        item, end = tlv.parse_one(raw)
    except CardDataError as exc:
        raise CardDataError(f"{what}: malformed BER-TLV ({exc})") from None
    tlv.check_tag(item, tag, what)
    check_filler(raw[end:], what)
    return item, end - len(item.value)


def children_in_order(value: bytes, expected: Sequence[tuple[int, str]],
                      what: str) -> list[tuple[tlv.Tlv, int]]:
    """The objects filling ``value``: exactly ``expected`` (tag, field name), in that order.
    Returns each object with its offset inside ``value``."""
    found: list[tuple[tlv.Tlv, int]] = []
    pos = 0
    for tag, field in expected:
        if pos >= len(value):
            raise CardDataError(f"{what}: {field} missing")
        try:
            item, end = tlv.parse_one(value, pos)
        except CardDataError as exc:
            raise CardDataError(f"{what}: {field}: malformed ({exc})") from None
        if item.tag != tag:
            raise CardDataError(f"{what}: {field} missing (found tag {item.tag:X} in its place)")
        found.append((item, pos))
        pos = end
    if pos != len(value):
        raise CardDataError(f"{what}: {len(value) - pos} bytes after the last object "
                            f"({expected[-1][1]})")
    return found


def fixed(value: bytes, size: int, field: str) -> bytes:
    """``value`` if it has ``size`` bytes; else ``CardDataError`` naming ``field``."""
    if len(value) != size:
        raise CardDataError(f"{field}: {len(value)} bytes, expected {size}")
    return value
