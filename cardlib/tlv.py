"""BER-TLV (ISO 7816-4 / X.690 subset): multi-byte tags, long-form lengths.

Tags are kept as the integer of their encoded bytes (``0x7F49``, ``0xDF21``), as the
card specifications write them. Parsing rejects anything truncated, indefinite or
over-long with ``CardDataError`` naming the problem.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import CardDataError

MAX_LENGTH_OCTETS = 3  # up to 16 MiB values; card files are far smaller
MAX_TAG_BYTES = 3  # ISO/IEC 7816-4 §6.3: a tag field has one, two or three bytes


def encode_tag(tag: int) -> bytes:
    if tag < 0:
        raise ValueError("tag must be non-negative")
    raw = tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")
    _check_tag_bytes(raw)
    return raw


def _check_tag_bytes(raw: bytes) -> None:
    first_is_multi = raw[0] & 0x1F == 0x1F
    if len(raw) == 1:
        if first_is_multi:
            raise ValueError(f"tag {raw.hex()} announces more bytes")
        return
    if not first_is_multi:
        raise ValueError(f"tag {raw.hex()} is multi-byte but its first byte is not xxx11111")
    for b in raw[1:-1]:
        if not b & 0x80:
            raise ValueError(f"tag {raw.hex()} ends early")
    if raw[-1] & 0x80:
        raise ValueError(f"tag {raw.hex()} does not end")
    if len(raw) > MAX_TAG_BYTES:
        raise ValueError(f"tag {raw.hex()} has {len(raw)} bytes (ISO 7816-4 allows at most "
                         f"{MAX_TAG_BYTES})")


def encode_length(length: int) -> bytes:
    if length < 0:
        raise ValueError("length must be non-negative")
    if length < 0x80:
        return bytes((length,))
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    if len(raw) > MAX_LENGTH_OCTETS:
        raise ValueError(f"length {length} too large for BER-TLV here")
    return bytes((0x80 | len(raw),)) + raw


@dataclass(frozen=True)
class Tlv:
    """One BER-TLV data object."""

    tag: int
    value: bytes

    def encode(self) -> bytes:
        return encode_tag(self.tag) + encode_length(len(self.value)) + self.value

    @property
    def constructed(self) -> bool:
        first = encode_tag(self.tag)[0]
        return bool(first & 0x20)

    def children(self) -> list[Tlv]:
        return parse_all(self.value)

    @classmethod
    def build(cls, tag: int, *children: Tlv | bytes) -> Tlv:
        return cls(tag, b"".join(c.encode() if isinstance(c, Tlv) else c for c in children))


def _read_tag(data: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(data):
        raise CardDataError(f"TLV truncated: tag expected at offset {pos}")
    start = pos
    first = data[pos]
    pos += 1
    if first & 0x1F == 0x1F:
        while True:
            if pos >= len(data):
                raise CardDataError(f"TLV truncated inside multi-byte tag at offset {start}")
            b = data[pos]
            pos += 1
            if not b & 0x80:
                break
            if pos - start >= MAX_TAG_BYTES:
                raise CardDataError(f"TLV tag {_tag_prefix(data, start).upper()} at offset "
                                    f"{start} is longer than {MAX_TAG_BYTES} bytes (ISO 7816-4)")
    return int.from_bytes(data[start:pos], "big"), pos


def _tag_prefix(data: bytes, start: int, shown: int = 8) -> str:
    """The bytes of an over-long tag, up to where it ends (at most ``shown``), in hex."""
    end = start + 1
    while end < min(len(data), start + shown):
        end += 1
        if not data[end - 1] & 0x80:
            break
    more = "…" if data[end - 1] & 0x80 else ""
    return data[start:end].hex() + more


def _read_length(data: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(data):
        raise CardDataError(f"TLV truncated: length expected at offset {pos}")
    first = data[pos]
    pos += 1
    if first < 0x80:
        return first, pos
    count = first & 0x7F
    if count == 0:
        raise CardDataError(f"TLV indefinite length at offset {pos - 1} is not allowed")
    if count > MAX_LENGTH_OCTETS:
        raise CardDataError(f"TLV length at offset {pos - 1} uses {count} octets")
    if pos + count > len(data):
        raise CardDataError(f"TLV truncated inside long-form length at offset {pos - 1}")
    return int.from_bytes(data[pos : pos + count], "big"), pos + count


def parse_one(data: bytes, pos: int = 0) -> tuple[Tlv, int]:
    """Parse one TLV at ``pos``; return it and the offset just past it."""
    tag, pos = _read_tag(data, pos)
    length, pos = _read_length(data, pos)
    end = pos + length
    if end > len(data):
        raise CardDataError(
            f"TLV tag {tag:X}: value of {length} bytes runs past the end ({len(data) - pos} left)"
        )
    return Tlv(tag, bytes(data[pos:end])), end


def parse_all(data: bytes) -> list[Tlv]:
    """Parse a concatenation of TLVs that must fill ``data`` exactly."""
    items: list[Tlv] = []
    pos = 0
    while pos < len(data):
        item, pos = parse_one(data, pos)
        items.append(item)
    return items


def header_length(data: bytes) -> int:
    """Total encoded size of the TLV whose first bytes are ``data`` (tag+length+value).

    Used to read a file in two steps: a few header bytes, then exactly the rest.
    """
    _, pos = _read_tag(data, 0)
    length, pos = _read_length(data, pos)
    return pos + length


# ---- card data: one template of an expected tag and its children by tag ------------------

def parse_expected(data: bytes, tag: int, what: str, *, alone: bool = False) -> Tlv:
    """The TLV at the start of ``data``, which must carry ``tag``; with ``alone``, nothing
    may follow it. Whatever is wrong raises ``CardDataError`` starting with ``what``."""
    try:
        objects = parse_all(data) if alone else [parse_one(data)[0]]
    except CardDataError as exc:
        raise CardDataError(f"{what}: malformed BER-TLV ({exc})") from None
    if len(objects) != 1:
        raise CardDataError(f"{what}: expected one data object, found {len(objects)}")
    return check_tag(objects[0], tag, what)


def check_tag(obj: Tlv, tag: int, what: str) -> Tlv:
    """``obj`` if it carries ``tag``; else ``CardDataError`` starting with ``what``."""
    if obj.tag != tag:
        raise CardDataError(f"{what}: expected tag {tag:X}, found {obj.tag:X}")
    return obj


def children_by_tag(value: bytes, what: str) -> dict[int, bytes]:
    """The TLVs that fill ``value``, by tag (the first of each); malformed content raises
    ``CardDataError`` starting with ``what``."""
    try:
        children = parse_all(value)
    except CardDataError as exc:
        raise CardDataError(f"{what}: malformed content ({exc})") from None
    found: dict[int, bytes] = {}
    for child in children:
        found.setdefault(child.tag, child.value)
    return found


def parse_template(data: bytes, tag: int, what: str, *, alone: bool = False) -> dict[int, bytes]:
    """Parse one TLV, check its tag, map its children: ``parse_expected`` then
    ``children_by_tag``."""
    return children_by_tag(parse_expected(data, tag, what, alone=alone).value, what)
