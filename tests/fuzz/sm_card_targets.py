"""Fuzz target: the card-info AP's secure messaging inside the resident card OS. The
harness selects the AP, presents the PIN, opens the 80 AE session with the key of EF 0006
(the host's own code), then sends the input's commands through the host's CLA 08
transport, with now and then a raw (unprotected, replayed or forged) CLA 08 command
straight to the card. Invariants: an answer with a status word every time, no card OS
error, and no answer to a protected command that the host cannot unwrap (the card never
answers data in the clear, or under another counter, to a secure command it accepted)."""

from __future__ import annotations

from cardlib.apdu import CommandApdu
from cardlib.apps.card_info import CardInfoApSession, CardInfoKey
from cardlib.channel import ApduChannel
from cardlib.errors import CardDataError, CardError
from cardlib.text_sm import is_secure_command
from cardlib.transport import InProcessTransport

from .card_targets import (
    CARD_INFO_PIN,
    _resident_card,
    decoded_commands,
    no_card_os_errors,
    personalised_resident_state,
)
from .personalisation_targets import CheckedCard
from .reader import Reader
from .registry import ContractViolation, refusals, target


def _open(card: object) -> tuple[ApduChannel, ApduChannel]:
    """The plain channel and the secure one, after the PIN and SET SESSION KEY."""
    plain = ApduChannel(InProcessTransport(CheckedCard(card)))  # type: ignore[arg-type]
    session = CardInfoApSession(plain)
    session.select()
    session.present(CardInfoKey.PIN, CARD_INFO_PIN)
    return plain, session.open_secure_messaging().channel


def _send_secure(channel: ApduChannel, apdu: CommandApdu) -> None:
    try:
        channel.transceive(apdu)
    except CardDataError as exc:
        if "secure messaging response" in str(exc):
            raise ContractViolation(f"the card's answer to {apdu} does not unwrap: {exc}") from None
    except CardError:
        pass


@target("emulator_card_info_sm", lambda: [bytes(48), bytes(range(64))])
def emulator_card_info_sm(data: bytes) -> None:
    card = _resident_card(personalised_resident_state())
    reader = Reader(data)
    with no_card_os_errors():
        card.power_on()  # type: ignore[attr-defined]
        plain, secure = _open(card)
        for apdu in decoded_commands(reader):
            if reader.chance(5) or not is_secure_command(apdu):  # raw, straight to the card
                with refusals(CardError):
                    plain.transceive(apdu)
                if apdu.cla & 0x08 or (apdu.ins == 0xA4 and apdu.p1 == 0x04):
                    return  # the card's counter moved alone, or another AP ended the session
                continue
            _send_secure(secure, apdu)
