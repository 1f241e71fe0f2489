"""Attacks on the secure channel, host against an in-process SCP03 card."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cardlib.apdu import CommandApdu, split_response
from cardlib.channel import ApduChannel
from cardlib.errors import (
    CardError,
    ChainingError,
    SecureMessagingError,
    SecurityStatusNotSatisfiedError,
)
from cardlib.scp03.crypto import aes_cbc_encrypt, aes_cmac, aes_ecb_block
from cardlib.scp03.host import open_secure_channel
from cardlib.scp03.keys import StaticKeyPrfs
from cardlib.scp03.wrapping import INTEGRITY_ERROR
from tests.scp03_card import KEYS, EchoScpCard

HOST_KEYS = StaticKeyPrfs.from_software_keys(*KEYS)
GET = CommandApdu(0x80, 0xCA, 0x00, 0x66, b"\x01\x02", 256)


class Wire:
    """The link between host and card, with a hook for a man in the middle."""

    def __init__(self, card: EchoScpCard) -> None:
        self.card = card
        self.sent: list[bytes] = []
        self.tamper = None  # (apdu, data, sw) -> (data, sw)
        self.replace_command = None  # apdu -> apdu

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]:
        if self.replace_command:
            apdu = self.replace_command(apdu)
        self.sent.append(apdu)
        data, sw = split_response(self.card.process_apdu(apdu))
        if self.tamper:
            data, sw = self.tamper(apdu, data, sw)
        return data, sw

    def close(self) -> None:
        pass


def secure(level: int = 0x33, card: EchoScpCard | None = None):  # type: ignore[no-untyped-def]
    wire = Wire(card or EchoScpCard())
    transport = open_secure_channel(ApduChannel(wire), HOST_KEYS, level)
    return wire, transport, ApduChannel(transport)


@pytest.mark.parametrize("level", [0x01, 0x03, 0x11, 0x13, 0x33])
def test_every_level_round_trips(level: int) -> None:
    wire, _, channel = secure(level)
    assert channel.send(GET) == b"OK\x01\x02"
    assert wire.card.executed[-1].data == b"\x01\x02"
    protected = wire.sent[-1]
    assert protected[0] == 0x84
    assert (b"\x01\x02" in protected) == (level & 0x02 == 0)  # C-DEC hides the data


def test_invalid_level_is_refused_before_any_apdu() -> None:
    wire = Wire(EchoScpCard())
    with pytest.raises(ValueError, match="security level 31"):
        open_secure_channel(ApduChannel(wire), HOST_KEYS, 0x31)
    assert wire.sent == []


def test_wrong_card_cryptogram_aborts_before_external_authenticate() -> None:
    wire = Wire(EchoScpCard(keys=(bytes(16), bytes(16))))
    with pytest.raises(SecureMessagingError, match="card cryptogram"):
        open_secure_channel(ApduChannel(wire), HOST_KEYS, 0x33)
    assert [apdu[1] for apdu in wire.sent] == [0x50]  # EXTERNAL AUTHENTICATE never sent


def test_replayed_initialize_update_response_is_rejected() -> None:
    wire, _, _ = secure()
    recorded = {}

    def record(apdu: bytes, data: bytes, sw: int) -> tuple[bytes, int]:
        if apdu[1] == 0x50:
            recorded.setdefault("iu", (data, sw))
            return recorded["iu"]
        return data, sw

    wire.tamper = record
    open_secure_channel(ApduChannel(wire), HOST_KEYS, 0x33)  # records
    with pytest.raises(SecureMessagingError, match="card cryptogram"):
        open_secure_channel(ApduChannel(wire), HOST_KEYS, 0x33)  # replays
    assert wire.sent[-1][1] == 0x50


def test_replayed_external_authenticate_is_rejected() -> None:
    wire, _, _ = secure()
    old_authenticate = next(apdu for apdu in wire.sent if apdu[1] == 0x82)
    wire.replace_command = lambda apdu: old_authenticate if apdu[1] == 0x82 else apdu
    with pytest.raises(SecurityStatusNotSatisfiedError):
        open_secure_channel(ApduChannel(wire), HOST_KEYS, 0x33)
    assert wire.card.scp.session is None


def _then_dead(wire: Wire, channel: ApduChannel) -> None:
    wire.replace_command = None
    with pytest.raises(SecurityStatusNotSatisfiedError):
        channel.send(GET)  # the card killed the session: even a good command fails


def test_dropped_command_kills_the_session() -> None:
    wire, transport, channel = secure()
    transport.session.wrap_command(GET)  # wrapped by the host, dropped on the way
    with pytest.raises(SecurityStatusNotSatisfiedError):
        channel.send(GET)
    _then_dead(wire, channel)


def test_reordered_commands_kill_the_session() -> None:
    wire, transport, _channel = secure()
    first = transport.session.wrap_command(GET).encode()
    second = transport.session.wrap_command(GET).encode()
    assert split_response(wire.card.process_apdu(second))[1] == 0x6982
    assert split_response(wire.card.process_apdu(first))[1] == 0x6982
    assert wire.card.executed == []


def test_duplicated_command_kills_the_session() -> None:
    wire, transport, _channel = secure()
    wrapped = transport.session.wrap_command(GET).encode()
    assert split_response(wire.card.process_apdu(wrapped))[1] == 0x9000
    assert split_response(wire.card.process_apdu(wrapped))[1] == 0x6982
    assert len(wire.card.executed) == 1


@pytest.mark.parametrize("where", ["data", "rmac", "sw"])
def test_flipped_response_bit_is_rejected_without_decrypting(where: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    wire, transport, channel = secure(0x33)
    decrypted: list[bytes] = []
    real_decrypt = transport.session._decrypt
    monkeypatch.setattr(transport.session, "_decrypt",
                        lambda *a, **k: decrypted.append(a[0]) or real_decrypt(*a, **k))

    def flip(apdu: bytes, data: bytes, sw: int) -> tuple[bytes, int]:
        if where == "data":
            return bytes([data[0] ^ 0x01]) + data[1:], sw
        if where == "rmac":
            return data[:-1] + bytes([data[-1] ^ 0x80]), sw
        return data, sw ^ 0x0001

    wire.tamper = flip
    with pytest.raises(SecureMessagingError) as info:
        channel.send(GET)
    assert str(info.value) == INTEGRITY_ERROR
    assert decrypted == []  # a bad MAC never reaches the decryption
    assert not transport.session.open
    with pytest.raises(SecureMessagingError, match="closed"):
        channel.send(GET)


def test_bad_padding_and_bad_mac_give_the_same_error() -> None:
    wire, _transport, channel = secure(0x33)
    session_card = wire.card.scp.session


    def forge_bad_padding(apdu: bytes, data: bytes, sw: int) -> tuple[bytes, int]:
        keys = session_card.keys
        icv = aes_ecb_block(keys.enc, (0x80).to_bytes(1, "big")
                            + session_card.last_counter.to_bytes(15, "big"))
        body = aes_cbc_encrypt(keys.enc, icv, bytes(16))  # decrypts to zeros: no 80 marker
        rmac = aes_cmac(keys.rmac, session_card.chain + body + sw.to_bytes(2, "big"))[:8]
        return body + rmac, sw

    wire.tamper = forge_bad_padding
    with pytest.raises(SecureMessagingError) as padding_error:
        channel.send(GET)
    wire2, _, channel2 = secure(0x33)
    wire2.tamper = lambda apdu, data, sw: (data[:-1] + bytes([data[-1] ^ 1]), sw)
    with pytest.raises(SecureMessagingError) as mac_error:
        channel2.send(GET)
    assert str(padding_error.value) == str(mac_error.value) == INTEGRITY_ERROR


def test_command_chaining_under_secure_messaging() -> None:
    wire, _, channel = secure(0x33)
    payload = bytes(range(256)) * 3  # 768 bytes: four protected links
    assert channel.send(CommandApdu(0x80, 0xE2, 0x00, 0x00, payload)) == b"OK" + payload
    links = [apdu for apdu in wire.sent if apdu[1] == 0xE2]
    assert len(links) == 4
    assert [apdu[0] for apdu in links] == [0x94, 0x94, 0x94, 0x84]
    assert all(len(apdu) <= 5 + 255 for apdu in links)
    assert payload[:16] not in b"".join(links)


@settings(max_examples=200)
@given(st.binary(max_size=64), st.integers(0, 0xFFFF))
def test_any_forged_response_yields_only_secure_messaging_errors(data: bytes, sw: int) -> None:
    wire, _transport, channel = secure(0x33)
    wire.tamper = lambda apdu, _data, _sw: (data, sw)
    try:
        result = channel.send(GET)
    except (SecureMessagingError, ChainingError):  # ChainingError: a forged 61xx forever
        return
    except CardError:
        assert not data  # only an unprotected error status passes through, with no data
        return
    raise AssertionError(f"forged response accepted: {result!r}")
