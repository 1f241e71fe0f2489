"""Security status across power and reset, in process (issue 11, defect 2).

The emulated cards behave as the real card measured in real-card.md §2.1: a verified
PIN survives a warm reset and a re-SELECT of its application, and only a power-off (or
selecting another application) clears it. The PIV card also forgets its PIN on
VERIFY ``00 20 FF 80`` (SP 800-73-4), spending no try; the host session sends exactly
those bytes, also when the flow that verified the PIN fails.
"""

from __future__ import annotations

import socket
import threading

import pytest

from cardlib.apdu import CommandApdu
from cardlib.apps.piv import PivSession, pkcs1_v15_block
from cardlib.channel import ApduChannel
from cardlib.constants import PIV_DEFAULT_PIN, PivAlgorithm, PivKeyRef
from cardlib.emulator import vpcd
from cardlib.emulator.piv_card import PivCard
from cardlib.emulator.profiles import blank_operator_card
from cardlib.errors import CardRemovedError, SecurityStatusNotSatisfiedError
from cardlib.piv_objects import dynamic_auth, pad_pin
from cardlib.transport import InProcessTransport
from tests.helpers import ScriptedTransport, SoftwareCipher

MANAGEMENT_KEY = bytes(range(16))
GUID = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
SELECT_PIV = bytes.fromhex("00A4040009A00000030800001000") + b"\x00"
VERIFY_PIN = bytes.fromhex("0020008008") + pad_pin(PIV_DEFAULT_PIN)
VERIFY_STATUS = bytes.fromhex("00200080")
FORGET_PIN = bytes.fromhex("0020FF80")  # VERIFY P1=FF, no data
PUT_CHUID = bytes.fromhex("00DB3FFF0A5C035FC1025303300100")


def sign_9a() -> bytes:
    """The raw GENERAL AUTHENTICATE with key 9A an attacker would send (no VERIFY)."""
    return CommandApdu(0x00, 0x87, PivAlgorithm.ECC_P256, PivKeyRef.AUTHENTICATION,
                       dynamic_auth(response=b"", challenge=bytes(32)), ne=256).encode()


def sw(answer: bytes) -> int:
    return int.from_bytes(answer[-2:], "big")


@pytest.fixture
def piv_card() -> PivCard:
    """An operator card with an ECC key 9A, freshly powered, PIV not yet selected."""
    card = PivCard(blank_operator_card("123456789012345", GUID, MANAGEMENT_KEY))
    session = PivSession(ApduChannel(InProcessTransport(card)))
    session.select()
    session.authenticate_management(SoftwareCipher(MANAGEMENT_KEY))
    session.generate_key(PivKeyRef.AUTHENTICATION, PivAlgorithm.ECC_P256)
    card.power_off()
    card.power_on()
    return card


def test_piv_pin_survives_reset_and_reselect_dies_with_power_off(piv_card: PivCard) -> None:
    card = piv_card
    assert sw(card.process_apdu(SELECT_PIV)) == 0x9000
    assert sw(card.process_apdu(sign_9a())) == 0x6982
    assert sw(card.process_apdu(VERIFY_PIN)) == 0x9000
    assert sw(card.process_apdu(sign_9a())) == 0x9000
    card.reset()  # warm reset (SCARD_RESET_CARD, vpcd 02): the PIN stays verified
    assert sw(card.process_apdu(sign_9a())) == 0x6985  # no application selected
    assert sw(card.process_apdu(SELECT_PIV)) == 0x9000
    assert sw(card.process_apdu(sign_9a())) == 0x9000
    assert sw(card.process_apdu(SELECT_PIV)) == 0x9000  # re-SELECT: unchanged (SP 800-73-4)
    assert sw(card.process_apdu(sign_9a())) == 0x9000
    card.power_off()  # SCARD_UNPOWER_CARD (vpcd 00, then 01)
    card.power_on()
    assert sw(card.process_apdu(SELECT_PIV)) == 0x9000
    assert sw(card.process_apdu(sign_9a())) == 0x6982
    assert sw(card.process_apdu(VERIFY_STATUS)) == 0x63C3


def test_piv_forget_pin_clears_the_status_and_spends_no_try(piv_card: PivCard) -> None:
    card = piv_card
    pin = card.piv.pins["80"]
    card.process_apdu(SELECT_PIV)
    assert sw(card.process_apdu(VERIFY_PIN)) == 0x9000
    assert sw(card.process_apdu(VERIFY_STATUS)) == 0x9000  # verified
    assert sw(card.process_apdu(FORGET_PIN)) == 0x9000
    assert sw(card.process_apdu(sign_9a())) == 0x6982
    assert sw(card.process_apdu(VERIFY_STATUS)) == 0x63C3  # not verified, 3 tries left
    assert pin.tries_left == pin.max_tries == 3
    assert sw(card.process_apdu(FORGET_PIN)) == 0x9000  # forgetting twice is harmless
    assert pin.tries_left == 3
    assert sw(card.process_apdu(FORGET_PIN + b"\x08" + pad_pin(PIV_DEFAULT_PIN))) == 0x6A86
    assert sw(card.process_apdu(bytes.fromhex("0020FF81"))) == 0x6A88  # only the PIN (80)


def test_management_authentication_dies_with_power_off(piv_card: PivCard) -> None:
    card = piv_card
    session = PivSession(ApduChannel(InProcessTransport(card)))
    session.select()
    session.authenticate_management(SoftwareCipher(MANAGEMENT_KEY))
    card.reset()
    card.process_apdu(SELECT_PIV)
    assert sw(card.process_apdu(PUT_CHUID)) == 0x9000  # a warm reset keeps it
    card.power_off()
    card.power_on()
    card.process_apdu(SELECT_PIV)
    assert sw(card.process_apdu(PUT_CHUID)) == 0x6982


def test_host_forget_pin_sends_00_20_ff_80() -> None:
    transport = ScriptedTransport(lambda apdu: (b"", 0x9000))
    PivSession(ApduChannel(transport)).forget_pin()
    assert transport.sent == [bytes.fromhex("0020FF80")]


def test_pin_forgotten_also_after_an_error_and_never_masks_it(piv_card: PivCard) -> None:
    card = piv_card
    piv = PivSession(ApduChannel(InProcessTransport(card)))
    piv.select()
    with pytest.raises(RuntimeError, match="flow failed"), piv.pin_forgotten():
        piv.verify_pin(PIV_DEFAULT_PIN)
        assert piv.pin_status().verified
        raise RuntimeError("flow failed")
    assert not piv.pin_status().verified
    with pytest.raises(SecurityStatusNotSatisfiedError):
        piv.sign_sha256(PivKeyRef.AUTHENTICATION, PivAlgorithm.ECC_P256, b"x")

    def removed(apdu: bytes) -> tuple[bytes, int]:
        raise CardRemovedError("card pulled")
    gone = PivSession(ApduChannel(ScriptedTransport(removed)))
    with pytest.raises(RuntimeError, match="own error"), gone.pin_forgotten():
        raise RuntimeError("own error")  # the failing forget is logged, not raised over it
    with gone.pin_forgotten():
        pass  # and on success a card that cannot be reached is only logged


def _frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(2, "big") + payload


def _read_frame(sock: socket.socket) -> bytes:
    header = sock.recv(2, socket.MSG_WAITALL)
    return sock.recv(int.from_bytes(header, "big"), socket.MSG_WAITALL)


def test_vpcd_control_bytes_reset_keeps_power_off_clears(piv_card: PivCard) -> None:
    """vpcd's 02 (reset, from SCARD_RESET_CARD) keeps the PIN; 00 then 01 (from
    SCARD_UNPOWER_CARD: power down, power up) clears it."""
    server = socket.create_server(("127.0.0.1", 0))
    link = vpcd.connect("127.0.0.1", server.getsockname()[1], timeout=5)
    thread = threading.Thread(target=vpcd.serve, args=(piv_card, link), daemon=True)
    thread.start()
    peer, _ = server.accept()

    def send(apdu: bytes) -> int:
        peer.sendall(_frame(apdu))
        return sw(_read_frame(peer))

    peer.sendall(_frame(b"\x01"))
    assert (send(SELECT_PIV), send(VERIFY_PIN), send(sign_9a())) == (0x9000, 0x9000, 0x9000)
    peer.sendall(_frame(b"\x02"))
    assert (send(SELECT_PIV), send(sign_9a())) == (0x9000, 0x9000)
    peer.sendall(_frame(b"\x00") + _frame(b"\x01"))
    assert (send(SELECT_PIV), send(sign_9a())) == (0x9000, 0x6982)
    peer.close()
    thread.join(timeout=5)
    server.close()
    assert not thread.is_alive()


def test_pkcs1_block_is_not_signed_without_pin_after_power_cycle(piv_card: PivCard) -> None:
    """The RSA form of the attack: a PKCS#1 block to an RSA 9A after a power cycle."""
    piv = PivSession(ApduChannel(InProcessTransport(piv_card)))
    piv.select()
    piv.authenticate_management(SoftwareCipher(MANAGEMENT_KEY))
    piv.generate_key(PivKeyRef.AUTHENTICATION, PivAlgorithm.RSA_2048)
    piv.verify_pin(PIV_DEFAULT_PIN)
    piv_card.power_off()
    piv_card.power_on()
    piv.select()
    with pytest.raises(SecurityStatusNotSatisfiedError):
        piv.general_authenticate(PivKeyRef.AUTHENTICATION, PivAlgorithm.RSA_2048,
                                 pkcs1_v15_block(b"x"))
