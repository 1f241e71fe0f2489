"""Card profiles as delivered by the card maker: file structure, empty, OP_READY."""

from __future__ import annotations

import secrets
import string

from ..constants import (
    PIV_DEFAULT_PIN,
    PIV_DEFAULT_PUK,
    PIV_PIN_MAX,
    PIV_PIN_MIN,
    PIV_PIN_TRIES,
    PIV_PUK_TRIES,
    Aid,
    PivKeyRef,
    PivObject,
)
from ..piv_objects import FASC_N_LENGTH, Chuid, data_object
from .resident_profile import make_blank_resident_card
from .state import AppState, CardState, FileState, PinState

OPERATOR_HISTORICAL_BYTES = b"JUKIPIV"


def t1_atr(historical: bytes) -> bytes:
    """ATR announcing T=1 with the given historical bytes and a correct TCK."""
    body = bytes((0x80 | len(historical), 0x80, 0x01)) + historical
    tck = 0
    for b in body:
        tck ^= b
    return b"\x3b" + body + bytes((tck,))


def random_serial() -> str:
    return "".join(secrets.choice(string.digits) for _ in range(15))


def blank_resident_card(serial: str | None = None,
                        transport_keys: dict[str, bytes] | None = None) -> CardState:
    """A blank resident card: issuer domain (with the card maker's transport keys
    ``enc``/``mac``/``dek``, if given), 共通AP, card-info AP, surface AP, JPKI AP and 住基AP
    with their allocated files but no data, no keys, no PINs (resident_profile.py)."""
    return make_blank_resident_card(serial or random_serial(), transport_keys)


def blank_operator_card(serial: str, guid: bytes, management_key: bytes) -> CardState:
    """A blank PIV operator card as the card maker delivers it: a CHUID naming the card
    (GUID), the factory PIN and PUK, the per-card management key, no keys, no certificates."""
    chuid = Chuid(guid=guid, fasc_n=bytes(FASC_N_LENGTH), expiry=None)
    pin = PinState(max_tries=PIV_PIN_TRIES, tries_left=PIV_PIN_TRIES, min_length=PIV_PIN_MIN,
                   max_length=PIV_PIN_MAX, charset=string.digits)
    puk = PinState(max_tries=PIV_PUK_TRIES, tries_left=PIV_PUK_TRIES, min_length=PIV_PIN_MIN,
                   max_length=PIV_PIN_MAX, charset=string.digits)
    pin.set(PIV_DEFAULT_PIN.encode("ascii"))
    puk.set(PIV_DEFAULT_PUK.encode("ascii"))
    piv = AppState(
        files={f"{PivObject.CHUID:06X}": FileState(data=data_object(chuid.encode()).hex()),
               f"{PivObject.AUTH_CERT:06X}": FileState(),
               f"{PivObject.CARD_AUTH_CERT:06X}": FileState()},
        pins={f"{PivKeyRef.PIN:02X}": pin, f"{PivKeyRef.PUK:02X}": puk},
        keys={f"{PivKeyRef.AUTHENTICATION:02X}": None,
              f"{PivKeyRef.CARD_AUTHENTICATION:02X}": None},
        admin_key=management_key.hex(),
    )
    return CardState(serial=serial, atr=t1_atr(OPERATOR_HISTORICAL_BYTES).hex(),
                     profile="operator", apps={Aid.PIV.hex(): piv})
