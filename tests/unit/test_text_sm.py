"""The card-info AP's secure messaging (real-card.md §4.7): the §11.2 vectors on both
sides, host against card in process, and the attacks the card must refuse."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from cardlib import tlv
from cardlib.apdu import CommandApdu, join_response, split_response
from cardlib.channel import ApduChannel
from cardlib.emulator.text_sm import CardInfoSecureMessaging
from cardlib.errors import ApduError, CardDataError, SecureMessagingError
from cardlib.text_sm import (
    TextSmTransport,
    encrypt_object,
    iv_of,
    oaep,
    open_text_sm,
    pad,
    session_key_plaintext,
    unpad,
)

SEED = bytes(range(32))
K = bytes(range(16))
VERIFY_A = bytes.fromhex("08 20 00 94 13 86 11 01 4C 38 D5 E5 87 01 1F E5 5F 9A A0 73 44 77 95 C2")
SELECT_0001 = bytes.fromhex(
    "08 A4 02 0C 13 86 11 01 46 D4 CA AC 31 3B 21 DA 35 E3 FE 7C 43 5C 31 50")
NUMBER_FILE = bytes.fromhex("FF100C353337363836363737313838FFFF")


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


class MiniCard:
    """Just enough of the card-info AP to carry the session: SET SESSION KEY, then VERIFY
    (SFI form) / SELECT EF / READ BINARY of one file under CLA 08 (the real card OS is
    part E's; this checks the two halves of the scheme against each other)."""

    def __init__(self, private_key: rsa.RSAPrivateKey) -> None:
        self.key = private_key
        self.sm = CardInfoSecureMessaging()
        self.plain: list[CommandApdu] = []
        self.wire: list[bytes] = []
        self.files = {b"\x00\x01": NUMBER_FILE}
        self.selected = b""

    def process_apdu(self, raw: bytes) -> bytes:
        self.wire.append(raw)
        apdu = CommandApdu.decode(raw)
        if apdu.cla == 0x80 and apdu.ins == 0xAE:
            return join_response(b"", self.sm.set_session_key(self.key, apdu.data))
        if apdu.cla & 0x08:
            plain = self.sm.unwrap(apdu)
            if isinstance(plain, int):
                return join_response(b"", plain)
            data, sw = self.execute(plain)
            return self.sm.wrap(data, sw)
        return join_response(*self.execute(apdu))

    def execute(self, apdu: CommandApdu) -> tuple[bytes, int]:
        self.plain.append(apdu)
        if apdu.ins == 0xA4:
            if apdu.p1 == 0x04:
                self.sm.reset()
                return b"", 0x9000
            if apdu.data not in self.files:
                return b"", 0x6A82
            self.selected = apdu.data
            return b"", 0x9000
        if apdu.ins == 0xB0:
            offset = apdu.p1 << 8 | apdu.p2
            return self.files[self.selected][offset: offset + (apdu.ne or 256)], 0x9000
        if apdu.ins == 0x20:
            return b"", 0x9000 if apdu.data == b"537686677188" else 0x63C9
        return b"", 0x6D00


def session_cryptogram(private_key: rsa.RSAPrivateKey, plaintext: bytes) -> bytes:
    return private_key.public_key().encrypt(plaintext, oaep())


def opened(key: rsa.RSAPrivateKey) -> tuple[MiniCard, ApduChannel]:
    card = MiniCard(key)
    channel = ApduChannel(_Wire(card))
    return card, open_text_sm(channel, key.public_key(), seed=SEED)


class _Wire:
    def __init__(self, card: MiniCard) -> None:
        self.card = card
        self.tamper = None

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]:
        data, sw = split_response(self.card.process_apdu(apdu))
        return self.tamper(data, sw) if self.tamper else (data, sw)

    def close(self) -> None:
        pass


# ---- the RC §11.2 vectors -------------------------------------------------------------

def test_iv_vectors() -> None:
    assert iv_of(K, 1).hex() == "7346139595c0b41e497bbde365f42d0a"
    assert iv_of(K, 2).hex() == "49d68753999ba68ce3897a686081b09d"


def test_host_sends_the_vector_apdus(key: rsa.RSAPrivateKey) -> None:
    card, channel = opened(key)
    channel.send(CommandApdu(0x00, 0x20, 0x00, 0x94, b"537686677188"), sensitive=True)
    channel.send(CommandApdu(0x00, 0xA4, 0x02, 0x0C, b"\x00\x01"))
    assert card.wire[-2:] == [VERIFY_A, SELECT_0001]
    set_key = card.wire[0]
    assert set_key[:7] == bytes.fromhex("80AE0000000100") and len(set_key) == 7 + 256


def test_card_unwraps_the_vector_apdus(key: rsa.RSAPrivateKey) -> None:
    sm = CardInfoSecureMessaging()
    assert sm.set_session_key(key, session_cryptogram(key, session_key_plaintext(SEED))) == 0x9000
    verify = sm.unwrap(CommandApdu.decode(VERIFY_A))
    assert verify == CommandApdu(0x00, 0x20, 0x00, 0x94, b"537686677188")
    select = sm.unwrap(CommandApdu.decode(SELECT_0001))
    assert select == CommandApdu(0x00, 0xA4, 0x02, 0x0C, b"\x00\x01")
    assert sm.counter == 2


def test_padding_always_added() -> None:
    assert pad(b"\x00\x01") == bytes.fromhex("0001800000000000 0000000000000000")
    assert len(pad(bytes(16))) == 32
    for data in (b"", b"\x80", b"\x80\x00", bytes(15), bytes(16), b"x" * 31):
        assert unpad(pad(data)) == data
    for bad in (b"", bytes(16), b"\x01" * 16, bytes(15) + b"\x81", b"\x80" + bytes(16)):
        assert unpad(bad) is None


# ---- host against card -------------------------------------------------------------------

def test_read_binary_form_and_round_trip(key: rsa.RSAPrivateKey) -> None:
    card, channel = opened(key)
    channel.send(CommandApdu(0x00, 0xA4, 0x02, 0x0C, b"\x00\x01"))
    assert channel.send(CommandApdu(0x00, 0xB0, 0x00, 0x00, ne=65536)) == NUMBER_FILE
    assert card.wire[-1] == bytes.fromhex("08B00000 000005 9603000000 0000")
    assert channel.send(CommandApdu(0x00, 0xB0, 0x00, 0x03, ne=12)) == b"537686677188"
    assert card.wire[-1] == bytes.fromhex("08B00003000005960300000C0000")
    assert card.plain[-1] == CommandApdu(0x00, 0xB0, 0x00, 0x03, ne=12)
    assert card.sm.counter == 3 and channel.transport.counter == 3


def test_plain_commands_do_not_advance_n(key: rsa.RSAPrivateKey) -> None:
    card, channel = opened(key)
    channel.transceive(CommandApdu(0x00, 0x84, 0x00, 0x00, ne=8))  # GET CHALLENGE, in clear
    channel.transceive(CommandApdu(0x00, 0x20, 0x00, 0x94))  # empty VERIFY: retry query
    assert card.wire[-1] == bytes.fromhex("00200094") and card.sm.counter == 0
    channel.send(CommandApdu(0x00, 0x20, 0x00, 0x94, b"537686677188"), sensitive=True)
    assert card.wire[-1] == VERIFY_A


def test_refused_commands_advance_n(key: rsa.RSAPrivateKey) -> None:
    card, channel = opened(key)
    with pytest.raises(ApduError) as refused:
        channel.send(CommandApdu(0x00, 0x20, 0x00, 0x94, b"000000000000"), sensitive=True)
    assert refused.value.sw == 0x63C9
    channel.send(CommandApdu(0x00, 0xA4, 0x02, 0x0C, b"\x00\x01"))  # N = 2 on both sides
    assert card.wire[-1] == SELECT_0001


def test_selecting_an_ap_ends_the_host_session(key: rsa.RSAPrivateKey) -> None:
    _, channel = opened(key)
    channel.send(CommandApdu(0x00, 0xA4, 0x04, 0x0C, bytes.fromhex("D3921000310001010408")))
    with pytest.raises(SecureMessagingError):
        channel.send(CommandApdu(0x00, 0xA4, 0x02, 0x0C, b"\x00\x01"))


def test_secret_never_on_the_wire_in_clear(key: rsa.RSAPrivateKey) -> None:
    card, channel = opened(key)
    channel.send(CommandApdu(0x00, 0x20, 0x00, 0x94, b"537686677188"), sensitive=True)
    channel.send(CommandApdu(0x00, 0xA4, 0x02, 0x0C, b"\x00\x01"))
    channel.send(CommandApdu(0x00, 0xB0, 0x00, 0x00, ne=65536))
    assert not any(b"537686677188" in raw for raw in card.wire)


def test_retry_with_fresh_seed_on_6f00(key: rsa.RSAPrivateKey) -> None:
    card = MiniCard(key)
    wire = _Wire(card)
    answers = iter([(b"", 0x6F00)])
    wire.tamper = lambda data, sw: next(answers, (data, sw))
    channel = open_text_sm(ApduChannel(wire), key.public_key(), seed=SEED)
    assert card.sm.active
    assert card.wire[0] != card.wire[1]  # a second cryptogram
    channel.send(CommandApdu(0x00, 0xA4, 0x02, 0x0C, b"\x00\x01"))
    assert card.wire[-1] != SELECT_0001  # K came from the fresh seed, not 00..1F


def test_refused_session_key_raises(key: rsa.RSAPrivateKey) -> None:
    other = rsa.generate_private_key(65537, 2048)
    card = MiniCard(other)
    with pytest.raises(ApduError) as refused:
        open_text_sm(ApduChannel(_Wire(card)), key.public_key())
    assert refused.value.sw == 0x6A80


def test_garbled_response_is_card_data_error(key: rsa.RSAPrivateKey) -> None:
    _card, channel = opened(key)
    wire = channel.transport._channel.transport
    channel.send(CommandApdu(0x00, 0xA4, 0x02, 0x0C, b"\x00\x01"))
    wire.tamper = lambda data, sw: (data[:-1] + bytes((data[-1] ^ 1,)), sw)
    with pytest.raises(CardDataError, match="padding"):
        channel.send(CommandApdu(0x00, 0xB0, 0x00, 0x00, ne=65536))
    wire.tamper = lambda data, sw: (b"\x87" + data[1:], sw)
    with pytest.raises(CardDataError, match="86"):
        channel.send(CommandApdu(0x00, 0xB0, 0x00, 0x00, ne=65536))


# ---- attacks on the card side ------------------------------------------------------------

def card_session(key: rsa.RSAPrivateKey) -> CardInfoSecureMessaging:
    sm = CardInfoSecureMessaging()
    assert sm.set_session_key(key, session_cryptogram(key, session_key_plaintext(SEED))) == 0x9000
    return sm


def test_replayed_command_destroys_the_session(key: rsa.RSAPrivateKey) -> None:
    sm = card_session(key)
    assert isinstance(sm.unwrap(CommandApdu.decode(VERIFY_A)), CommandApdu)
    assert sm.unwrap(CommandApdu.decode(VERIFY_A)) == 0x6988  # N = 2 now: padding fails
    assert not sm.active
    assert sm.unwrap(CommandApdu.decode(SELECT_0001)) == 0x69FC  # even the right N=2
    assert sm.unwrap(CommandApdu.decode(VERIFY_A)) == 0x69FC


def test_reordered_commands_refused(key: rsa.RSAPrivateKey) -> None:
    sm = card_session(key)
    assert sm.unwrap(CommandApdu.decode(SELECT_0001)) == 0x6988  # N=2's command at N=1
    assert sm.unwrap(CommandApdu.decode(VERIFY_A)) == 0x69FC


def _with_data(apdu: bytes, data: bytes) -> CommandApdu:
    head = CommandApdu.decode(apdu)
    return CommandApdu(head.cla, head.ins, head.p1, head.p2, data, head.ne)


def test_data_object_rules(key: rsa.RSAPrivateKey) -> None:
    sm = card_session(key)
    good = CommandApdu.decode(VERIFY_A).data
    swapped = b"\x96" + good[1:]
    assert sm.unwrap(_with_data(VERIFY_A, swapped)) == 0x6988
    assert sm.unwrap(_with_data(VERIFY_A, good + good)) == 0x6988  # a second DO, a copy
    indicator_2 = good[:2] + b"\x02" + good[3:]
    assert sm.unwrap(_with_data(VERIFY_A, indicator_2)) == 0x6988
    read_with_86 = CommandApdu(0x08, 0xB0, 0, 0, encrypt_object(K, 5, b"\x00\x00"), 65536)
    assert sm.unwrap(read_with_86) == 0x6988
    assert sm.unwrap(CommandApdu(0x08, 0xB0, 0, 0, bytes.fromhex("9602000C"), 65536)) == 0x6988
    assert sm.active  # none of those was a padding failure
    assert sm.counter == 5  # but each advanced N


def test_header_authentication_class_refused(key: rsa.RSAPrivateKey) -> None:
    sm = card_session(key)
    assert sm.unwrap(_with_data(b"\x0C" + VERIFY_A[1:], CommandApdu.decode(VERIFY_A).data)) \
        == 0x6987
    assert sm.unwrap(CommandApdu.decode(VERIFY_A)) != 0x6987


def test_no_session() -> None:
    sm = CardInfoSecureMessaging()
    assert sm.unwrap(CommandApdu.decode(SELECT_0001)) == 0x6882
    assert sm.unwrap(CommandApdu.decode(VERIFY_A)) == 0x69FC
    assert sm.unwrap(CommandApdu(0x08, 0xB0, 0, 0, bytes.fromhex("9603000000"), 65536)) == 0x69FC


def test_session_key_forms(key: rsa.RSAPrivateKey) -> None:
    sm = CardInfoSecureMessaging()
    ccs_only = tlv.Tlv.build(0xA0, tlv.Tlv(0x81, SEED)).encode()
    both = tlv.Tlv.build(0xA0, tlv.Tlv(0x80, SEED), tlv.Tlv(0x81, SEED)).encode()
    short_seed = tlv.Tlv.build(0xA0, tlv.Tlv(0x80, SEED[:16])).encode()
    for plain in (ccs_only, both, short_seed):
        assert sm.set_session_key(key, session_cryptogram(key, plain)) == 0x6A80
        assert not sm.active
    modulus = key.public_key().public_numbers().n
    other = rsa.generate_private_key(65537, 2048)
    wrong_key = session_cryptogram(other, session_key_plaintext(SEED))
    while int.from_bytes(wrong_key, "big") >= modulus:  # that one is 6F00, tested below
        wrong_key = session_cryptogram(other, session_key_plaintext(SEED))  # OAEP is random
    assert sm.set_session_key(key, wrong_key) == 0x6A80
    assert sm.set_session_key(key, modulus.to_bytes(256, "big")) == 0x6F00
    assert sm.set_session_key(key, b"\xff" * 256) == 0x6F00
    assert sm.set_session_key(key, b"\x01" * 255) == 0x6A80
    assert not sm.active


def test_new_session_key_resets_n(key: rsa.RSAPrivateKey) -> None:
    sm = card_session(key)
    sm.unwrap(CommandApdu.decode(VERIFY_A))
    sm.unwrap(CommandApdu.decode(VERIFY_A))  # destroyed
    assert sm.set_session_key(key, session_cryptogram(key, session_key_plaintext(SEED))) == 0x9000
    assert isinstance(sm.unwrap(CommandApdu.decode(VERIFY_A)), CommandApdu)
    sm.reset()
    assert sm.unwrap(CommandApdu.decode(SELECT_0001)) == 0x6882


def test_response_under_the_command_n(key: rsa.RSAPrivateKey) -> None:
    sm = card_session(key)
    sm.unwrap(CommandApdu.decode(VERIFY_A))
    read = sm.unwrap(CommandApdu(0x08, 0xB0, 0, 0, bytes.fromhex("9603000000"), 65536))
    assert read == CommandApdu(0x00, 0xB0, 0, 0, ne=65536)
    data, sw = split_response(sm.wrap(NUMBER_FILE, 0x9000))
    assert sw == 0x9000 and data[:3] == bytes.fromhex("862101")
    assert TextSmTransport._unprotect(K, 2, data) == NUMBER_FILE
    # no MAC: under another N only the first block changes (the padding is in the second)
    assert TextSmTransport._unprotect(K, 3, data) != NUMBER_FILE
    assert sm.wrap(b"", 0x6A82) == bytes.fromhex("6A82")


# ---- properties ------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300), counter=st.integers(1, 2**32 - 1))
def test_object_round_trip(data: bytes, counter: int) -> None:
    obj = encrypt_object(K, counter, data)
    assert TextSmTransport._unprotect(K, counter, obj) == data


@settings(max_examples=300, deadline=None)
@given(ins=st.sampled_from([0x20, 0xA4, 0xB0, 0xB2]), p1=st.integers(0, 255),
       data=st.binary(max_size=64))
def test_card_unwrap_never_raises(ins: int, p1: int, data: bytes) -> None:
    sm = CardInfoSecureMessaging()
    sm._key = K  # a session without the RSA step: the unwrap rules alone
    for _ in range(2):
        answer = sm.unwrap(CommandApdu(0x08, ins, p1, 0x00, data, 256))
        assert isinstance(answer, (int, CommandApdu))
        if isinstance(answer, int):
            assert answer in (0x6988, 0x69FC)


def test_secrets_never_logged(key: rsa.RSAPrivateKey, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(5)  # the APDU level
    card, channel = opened(key)
    channel.send(CommandApdu(0x00, 0x20, 0x00, 0x94, b"537686677188"), sensitive=True)
    assert card.sm.counter == 1
    text = caplog.text
    assert "537686677188" not in text and b"537686677188".hex() not in text
    assert SEED.hex() not in text and K.hex() not in text
