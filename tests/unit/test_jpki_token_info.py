"""JPKI EF 0006 (RC §7.3, sample §11.1 F byte for byte) and EF 0008."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardlib.errors import CardDataError
from cardlib.jpki_token_info import (
    REAL_CARD_FLAGS,
    CertAvailability,
    TokenInfo,
    decode_cert_availability,
    decode_token_info,
    encode_token_info,
)

SAMPLE_F = bytes.fromhex("".join((  # RC §11.1 F, 160 bytes
    "4A504B494150494343544F4B454E3220",
    "20202020202020202020202020202020",
    "30303030303030303030303030303030",
    "30303030303030303030303030303031",
    "453136523031" "4E4A" "2020202020202020",
    "30303030303030303230353030303033",
    "0000040D000000010000000000000001",
    "0000000000000010" + "00000006FFFFFFFF",
    "FFFFFFFFFFFFFFFFFFFFFFFF30333031",
    "39393939393939393939393939393939",
)))
SAMPLE_F_INFO = TokenInfo("JPKIAPICCTOKEN2", "0" * 31 + "1", "E16R01NJ", "0000000020500003")


def test_sample_f_both_ways() -> None:
    assert len(SAMPLE_F) == 160
    info = decode_token_info(SAMPLE_F)
    assert info == SAMPLE_F_INFO
    assert info.flags == 0x040D == REAL_CARD_FLAGS
    assert (info.max_session_count, info.session_count, info.max_rw_session_count,
            info.rw_session_count) == (1, 0, 1, 0)
    assert (info.max_pin_len, info.min_pin_len) == (16, 6)
    assert info.total_public_memory == info.free_private_memory == 0xFFFFFFFF
    assert (info.hardware_version, info.firmware_version, info.utc_time) == ("03", "01", "9" * 16)
    assert info.encode() == SAMPLE_F == encode_token_info(SAMPLE_F_INFO)
    assert TokenInfo.for_card("0000000020500003", "0" * 31 + "1", "E16R01NJ") == SAMPLE_F_INFO


def test_labels_and_padding() -> None:
    raw = TokenInfo("JPKIAPGPSETOKEN", "m", "x", "1").encode()
    assert raw[:32] == b"JPKIAPGPSETOKEN" + b" " * 17
    nul_padded = b"JPKIAPIOSTOKEN" + bytes(18) + raw[32:]
    assert decode_token_info(nul_padded).label == "JPKIAPIOSTOKEN"


@pytest.mark.parametrize(("raw", "message"), [
    (SAMPLE_F[:-1], "159 bytes"),
    (SAMPLE_F + b" ", "161 bytes"),
    (b"JPKI\x01" + SAMPLE_F[5:], "label is not printable"),
    (SAMPLE_F[:64] + "É".encode("latin-1") + SAMPLE_F[65:], "model is not printable"),
])
def test_decode_errors(raw: bytes, message: str) -> None:
    with pytest.raises(CardDataError, match=message):
        decode_token_info(raw)


def test_encode_refuses() -> None:
    with pytest.raises(ValueError, match="label"):
        TokenInfo("X" * 33, "", "", "").encode()
    with pytest.raises(ValueError, match="model"):
        TokenInfo("X", "", "モデル", "").encode()
    with pytest.raises(ValueError, match="CK_ULONG"):
        TokenInfo("X", "", "", "", flags=-1).encode()


def test_cert_availability() -> None:
    assert decode_cert_availability(bytes.fromhex("8F8F00")) == CertAvailability(True, True)
    assert decode_cert_availability(bytes.fromhex("008F00")) == CertAvailability(False, True)
    assert CertAvailability(True, True).encode() == bytes.fromhex("8F8F00")
    with pytest.raises(CardDataError, match="4 bytes"):
        decode_cert_availability(bytes.fromhex("8F8F00FF"))  # no filler on this EF
    with pytest.raises(CardDataError, match="byte 1"):
        decode_cert_availability(bytes.fromhex("8F0100"))


@given(st.binary(min_size=150, max_size=170))
def test_random_bytes(raw: bytes) -> None:
    with contextlib.suppress(CardDataError):
        decode_token_info(raw)
    with contextlib.suppress(CardDataError):
        decode_cert_availability(raw[:3])


printable = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=16)


@given(printable, printable, printable, printable, st.integers(0, 0xFFFFFFFF),
       st.integers(0, 0xFFFFFFFF))
def test_round_trip(label: str, maker: str, model: str, serial: str, flags: int, mem: int) -> None:
    info = TokenInfo(label, maker, model, serial, flags=flags, free_public_memory=mem)
    assert decode_token_info(info.encode()) == info


@given(st.booleans(), st.booleans(), st.integers(0, 255))
def test_cert_availability_round_trip(signing: bool, auth: bool, reserved: int) -> None:
    value = CertAvailability(signing, auth, reserved)
    assert decode_cert_availability(value.encode()) == value


def test_session_reads_the_token_label_record_and_availability() -> None:
    from cardlib.apps.jpki import JpkiApSession
    from cardlib.channel import ApduChannel
    from tests.helpers import ScriptedTransport

    files = {b"\x00\x06": SAMPLE_F, b"\x00\x08": bytes.fromhex("8F8F00")}
    current = [b""]

    def answer(apdu: bytes) -> tuple[bytes, int]:
        if apdu[1] == 0xA4:
            current[0] = apdu[5:7]
            return b"", 0x9000
        le = apdu[4] or 256
        return files[current[0]][:le], 0x9000

    transport = ScriptedTransport(answer)
    session = JpkiApSession(ApduChannel(transport))
    assert session.read_token_info() == "JPKIAPICCTOKEN2"
    assert transport.sent[-1] == bytes.fromhex("00B0000020")  # the label only, as myna reads
    assert session.read_token_info_record() == SAMPLE_F_INFO
    assert transport.sent[-1] == bytes.fromhex("00B00000A0")
    assert session.read_cert_availability() == CertAvailability(True, True)
    assert transport.sent[-2:] == [bytes.fromhex("00A4020C020008"), bytes.fromhex("00B0000003")]
