"""Card profiles as delivered by the card maker: file structure, empty, OP_READY."""

from __future__ import annotations

import secrets
import string

from ..constants import CARD_INFO_PIN_LENGTH, CARD_INFO_PIN_MAX_TRIES, Aid, CardInfoFile, CommonFile
from .state import FREE, AppState, CardState, FileState, PinState

HISTORICAL_BYTES = b"JUKICARD"


def t1_atr(historical: bytes) -> bytes:
    """ATR announcing T=1 with the given historical bytes and a correct TCK."""
    body = bytes((0x80 | len(historical), 0x80, 0x01)) + historical
    tck = 0
    for b in body:
        tck ^= b
    return b"\x3b" + body + bytes((tck,))


def random_serial() -> str:
    return "".join(secrets.choice(string.digits) for _ in range(15))


def _fid(value: int) -> str:
    return f"{value:04X}"


def blank_resident_card(serial: str | None = None) -> CardState:
    """A blank resident card: common AP and card-info AP, no data, no keys, no PINs."""
    pin_read = f"pin:{_fid(CardInfoFile.PIN)}"
    common = AppState(
        files={_fid(CommonFile.CARD_INFO_RECORD): FileState(read=FREE)},
        keys={_fid(CommonFile.AUTH_KEY): None},
    )
    card_info = AppState(
        files={
            _fid(CardInfoFile.INDIVIDUAL_NUMBER): FileState(read=pin_read),
            _fid(CardInfoFile.ATTRIBUTES): FileState(read=pin_read),
            _fid(CardInfoFile.INTEGRITY): FileState(read=pin_read),
            _fid(CardInfoFile.BASIC_INFO): FileState(read=FREE),
        },
        pins={
            _fid(CardInfoFile.PIN): PinState(
                max_tries=CARD_INFO_PIN_MAX_TRIES,
                tries_left=CARD_INFO_PIN_MAX_TRIES,
                min_length=CARD_INFO_PIN_LENGTH,
                max_length=CARD_INFO_PIN_LENGTH,
                charset=string.digits,
            )
        },
    )
    return CardState(
        serial=serial or random_serial(),
        atr=t1_atr(HISTORICAL_BYTES).hex(),
        apps={
            Aid.ISSUER_SECURITY_DOMAIN.hex(): AppState(),
            Aid.COMMON.hex(): common,
            Aid.CARD_INFO.hex(): card_info,
        },
    )
