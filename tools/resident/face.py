"""The card surface (券面事項確認AP, RC §5) as the host sees it.

``is_placeholder_photo``: whether a face photo is the plain placeholder an issuance
without a ``photo`` writes (`juki card check` flags such cards). The placeholder is
recognised by its JPEG 2000 codestream comment (COM marker, Latin text), which only
``tools.issuance.card_face_images.placeholder_photo`` writes: the photo is covered by
the face signature (DF28), so a signed card cannot have gained or lost the mark.
"""

from __future__ import annotations

import struct

PLACEHOLDER_COMMENT = b"juki placeholder photo v1"  # = tools.issuance.card_face_images'
JP2_SIGNATURE_BOX = bytes.fromhex("0000000C6A5020200D0A870A")  # length 12, 'jP  ', 0D0A870A
MARKER_SOC, MARKER_SOT, MARKER_COM = 0xFF4F, 0xFF90, 0xFF64
COM_LATIN = 1


def _codestream(jp2: bytes) -> bytes | None:
    """The contiguous codestream box ('jp2c') of a JP2 file, or None."""
    if not jp2.startswith(JP2_SIGNATURE_BOX):
        return None
    offset = 0
    while offset + 8 <= len(jp2):
        length, kind = struct.unpack_from(">I4s", jp2, offset)
        header = 8
        if length == 1:
            if offset + 16 > len(jp2):
                return None
            length, header = struct.unpack_from(">Q", jp2, offset + 8)[0], 16
        elif length == 0:
            length = len(jp2) - offset
        if length < header or offset + length > len(jp2):
            return None
        if kind == b"jp2c":
            return jp2[offset + header:offset + length]
        offset += length
    return None


def _main_header_comments(codestream: bytes) -> list[tuple[int, bytes]]:
    """(registration, text) of every COM marker before the first tile (SOT)."""
    if len(codestream) < 2 or struct.unpack_from(">H", codestream)[0] != MARKER_SOC:
        return []
    comments, offset = [], 2
    while offset + 4 <= len(codestream):
        marker, length = struct.unpack_from(">HH", codestream, offset)
        if marker == MARKER_SOT or marker >> 8 != 0xFF or length < 2:
            break
        segment = codestream[offset + 4:offset + 2 + length]
        if marker == MARKER_COM and len(segment) >= 2:
            comments.append((struct.unpack_from(">H", segment)[0], segment[2:]))
        offset += 2 + length
    return comments


def is_placeholder_photo(jp2: bytes) -> bool:
    """True when ``jp2`` is the issuance placeholder (see the module docstring)."""
    codestream = _codestream(jp2)
    return codestream is not None and (COM_LATIN, PLACEHOLDER_COMMENT) in _main_header_comments(codestream)
