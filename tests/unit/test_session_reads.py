"""ApplicationSession's physical, record and short-EF-id reads (RC §2.1, §2.2): the bytes
on the wire and what comes back."""

from __future__ import annotations

import pytest

from cardlib.apps.base import ApplicationSession
from cardlib.channel import ApduChannel
from cardlib.errors import FileNotFoundOnCardError, SecurityStatusNotSatisfiedError
from tests.helpers import ScriptedTransport


def file_card(content: bytes, end_sw: int = 0x6B00, short_ok: bool = True):  # type: ignore[no-untyped-def]
    def answer(apdu: bytes) -> tuple[bytes, int]:
        if apdu[1] == 0xA4:
            return b"", 0x9000
        if apdu[1] == 0xB0:
            offset = (apdu[2] << 8) | apdu[3]
            le = apdu[4] or 256
            if offset >= len(content):
                return b"", end_sw
            chunk = content[offset:offset + le]
            if len(chunk) < le and not short_ok:
                return chunk, 0x6282
            return chunk, 0x9000
        return b"", 0x6D00
    return ScriptedTransport(answer)


def session(transport: ScriptedTransport) -> ApplicationSession:
    return ApplicationSession(ApduChannel(transport), aid=bytes.fromhex("D3921000310001010408"))


def test_physical_read_includes_filler_and_stops_at_a_short_chunk() -> None:
    physical = bytes.fromhex("FF100C353337363836363737313838FFFF")
    transport = file_card(physical)
    assert session(transport).read_physical(0x0001) == physical
    assert transport.sent == [bytes.fromhex("00A4020C020001"), bytes.fromhex("00B00000FF")]


@pytest.mark.parametrize(("end_sw", "short_ok"), [(0x6B00, True), (0x6282, False)])
def test_physical_read_of_a_long_file(end_sw: int, short_ok: bool) -> None:
    content = bytes(range(256)) * 2 + b"\xff" * 0x1FE  # 1022 bytes: five chunks, the last short
    transport = file_card(content, end_sw, short_ok)
    assert session(transport).read_physical(0x0005) == content
    offsets = [(a[2] << 8) | a[3] for a in transport.sent[1:]]
    assert offsets == [0, 0xFF, 0x1FE, 0x2FD, 0x3FC]


def test_physical_read_exact_multiple_ends_on_6b00() -> None:
    content = b"\x01" * 0xFF * 2
    transport = file_card(content)
    assert session(transport).read_physical(0x0004) == content
    assert transport.sent[-1] == bytes.fromhex("00B001FEFF")  # answered 6B00


def test_physical_read_limit_and_errors() -> None:
    assert session(file_card(b"\xaa" * 600)).read_physical(1, limit=300) == b"\xaa" * 300
    assert session(file_card(b"")).read_physical(1) == b""

    def denied(apdu: bytes) -> tuple[bytes, int]:
        return (b"", 0x9000) if apdu[1] == 0xA4 else (b"", 0x6982)
    with pytest.raises(SecurityStatusNotSatisfiedError):
        session(ScriptedTransport(denied)).read_physical(1)


def test_read_record_forms() -> None:
    transport = ScriptedTransport(lambda apdu: (b"\x01\x02ab", 0x9000))
    s = session(transport)
    assert s.read_record(1) == b"\x01\x02ab"
    assert s.read_record(1, sfi=1) == b"\x01\x02ab"
    assert transport.sent == [bytes.fromhex("00B2010400"), bytes.fromhex("00B2010C00")]
    with pytest.raises(ValueError):
        s.read_record(0)
    with pytest.raises(ValueError):
        s.read_record(1, sfi=31)
    missing = session(ScriptedTransport(lambda apdu: (b"", 0x6A82)))
    with pytest.raises(FileNotFoundOnCardError):
        missing.read_record(1, sfi=2)


def test_read_binary_by_sfi() -> None:
    transport = ScriptedTransport(lambda apdu: (b"\x8f\x8f\x00", 0x9000))
    assert session(transport).read_binary_sfi(0x08, 0, 3) == b"\x8f\x8f\x00"
    assert transport.sent[-1] == bytes.fromhex("00B0880003")
    with pytest.raises(ValueError):
        session(transport).read_binary_sfi(0x1F, 0, 3)
    with pytest.raises(ValueError):
        session(transport).read_binary_sfi(1, 256, 3)
