"""JICSAP simple TLV (RC §2.2, §8): the record EFs of the 共通AP and 住基AP.

One tag byte (``00`` and ``FF`` are not tags); the length is one byte (0–254) or ``FF``
followed by two big-endian bytes (0–65535). No constructed objects.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import CardDataError

LONG_LENGTH = 0xFF
MAX_LENGTH = 0xFFFF


@dataclass(frozen=True)
class SimpleTlv:
    tag: int
    value: bytes

    def encode(self) -> bytes:
        return encode_simple_tlv(self.tag, self.value)


def encode_simple_tlv(tag: int, value: bytes) -> bytes:
    if not 0x01 <= tag <= 0xFE:
        raise ValueError("simple TLV tag must be 01..FE")
    length = len(value)
    if length > MAX_LENGTH:
        raise ValueError(f"simple TLV value of {length} bytes is too long")
    head = bytes((length,)) if length < LONG_LENGTH else b"\xff" + length.to_bytes(2, "big")
    return bytes((tag,)) + head + bytes(value)


def parse_simple_tlv(data: bytes, pos: int = 0, what: str = "simple TLV") -> tuple[SimpleTlv, int]:
    """One object at ``pos``; returns it and the offset just past it."""
    data = bytes(data)
    if pos >= len(data):
        raise CardDataError(f"{what}: tag expected at offset {pos}")
    tag = data[pos]
    if tag in (0x00, 0xFF):
        raise CardDataError(f"{what}: {tag:02X} at offset {pos} is not a tag")
    if pos + 1 >= len(data):
        raise CardDataError(f"{what}: length expected at offset {pos + 1}")
    length, start = data[pos + 1], pos + 2
    if length == LONG_LENGTH:
        if start + 2 > len(data):
            raise CardDataError(f"{what}: truncated three-byte length at offset {pos + 1}")
        length, start = int.from_bytes(data[start:start + 2], "big"), start + 2
    if start + length > len(data):
        raise CardDataError(f"{what}: tag {tag:02X}: value of {length} bytes runs past the end "
                            f"({len(data) - start} left)")
    return SimpleTlv(tag, data[start:start + length]), start + length


def parse_simple_tlvs(data: bytes, what: str = "simple TLV") -> list[SimpleTlv]:
    """The objects of a record, up to the end or to filler (a first byte ``00``/``FF``
    after an object, and only filler after it)."""
    data = bytes(data)
    items: list[SimpleTlv] = []
    pos = 0
    while pos < len(data) and data[pos] not in (0x00, 0xFF):
        item, pos = parse_simple_tlv(data, pos, what)
        items.append(item)
    if any(b not in (0x00, 0xFF) for b in data[pos:]):
        raise CardDataError(f"{what}: data after the filler at offset {pos}")
    return items
