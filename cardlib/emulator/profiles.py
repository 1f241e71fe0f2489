"""Card profiles as delivered by the card maker: file structure, empty, OP_READY."""

from __future__ import annotations

import secrets
import string

from ..constants import (
    CARD_INFO_PIN_LENGTH,
    CARD_INFO_PIN_MAX_TRIES,
    JPKI_AUTH_PIN_TRIES,
    JPKI_SIGN_PIN_TRIES,
    PIV_DEFAULT_PIN,
    PIV_DEFAULT_PUK,
    PIV_PIN_MAX,
    PIV_PIN_MIN,
    PIV_PIN_TRIES,
    PIV_PUK_TRIES,
    SCP03_KVN,
    SM_LEVEL_FULL,
    Aid,
    CardInfoFile,
    CommonFile,
    JpkiFile,
    PivKeyRef,
    PivObject,
    RegistryFile,
)
from ..piv_objects import FASC_N_LENGTH, Chuid, data_object
from .state import FREE, AppState, CardState, FileState, PinState, ScpKeys

OPERATOR_HISTORICAL_BYTES = b"JUKIPIV"

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


def _common_ap() -> AppState:
    return AppState(
        files={_fid(CommonFile.CARD_INFO_RECORD): FileState(read=FREE)},
        keys={_fid(CommonFile.AUTH_KEY): None},
    )


def _card_info_ap() -> AppState:
    pin_read = f"pin:{_fid(CardInfoFile.PIN)}"
    return AppState(
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


def _jpki_ap() -> AppState:
    auth_pin, sign_pin = _fid(JpkiFile.AUTH_PIN), _fid(JpkiFile.SIGN_PIN)
    return AppState(
        files={
            _fid(JpkiFile.AUTH_CERT): FileState(read=FREE),
            _fid(JpkiFile.AUTH_CA_CERT): FileState(read=FREE),
            _fid(JpkiFile.SIGN_CERT): FileState(read=f"pin:{sign_pin}"),
            _fid(JpkiFile.SIGN_CA_CERT): FileState(read=FREE),
            _fid(JpkiFile.TOKEN_INFO): FileState(read=FREE),
        },
        pins={
            auth_pin: PinState(max_tries=JPKI_AUTH_PIN_TRIES, tries_left=JPKI_AUTH_PIN_TRIES,
                               min_length=4, max_length=4, charset=string.digits),
            sign_pin: PinState(max_tries=JPKI_SIGN_PIN_TRIES, tries_left=JPKI_SIGN_PIN_TRIES,
                               min_length=6, max_length=16,
                               charset=string.ascii_uppercase + string.digits),
        },
        keys={_fid(JpkiFile.AUTH_KEY): None, _fid(JpkiFile.SIGN_KEY): None},
        key_pins={_fid(JpkiFile.AUTH_KEY): auth_pin, _fid(JpkiFile.SIGN_KEY): sign_pin},
    )


def _registry_ap() -> AppState:
    return AppState(
        files={_fid(RegistryFile.RECORD_CODE): FileState(read=FREE),
               _fid(RegistryFile.CHANGE_HISTORY): FileState(read=FREE)},
        sm_level=SM_LEVEL_FULL,  # every command but SELECT/IU/EA under SCP03 level 33
    )


def blank_resident_card(serial: str | None = None,
                        transport_keys: dict[str, bytes] | None = None) -> CardState:
    """A blank resident card: issuer domain (with the card maker's transport keys
    ``enc``/``mac``/``dek``, if given), common AP, card-info AP, JPKI AP and resident-registry AP
    with their files but no data, no keys, no PINs."""
    isd = AppState()
    if transport_keys is not None:
        isd.scp = ScpKeys(SCP03_KVN, *(transport_keys[k].hex() for k in ("enc", "mac", "dek")))
    return CardState(
        serial=serial or random_serial(),
        atr=t1_atr(HISTORICAL_BYTES).hex(),
        apps={
            Aid.ISSUER_SECURITY_DOMAIN.hex(): isd,
            Aid.COMMON.hex(): _common_ap(),
            Aid.CARD_INFO.hex(): _card_info_ap(),
            Aid.JPKI.hex(): _jpki_ap(),
            Aid.RESIDENT_REGISTRY.hex(): _registry_ap(),
        },
    )


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
