"""The blank resident card as the card maker delivers it (real-card.md §3–§9 and
docs/resident-card.md): every application, EF (allocated, ``FF``-filled), record EF, key
and PIN of the real card's layout, plus our resident-record files in the 住基AP."""

from __future__ import annotations

import secrets
import string

from ..constants import (
    BIRTH_DATE_KEY_TRIES,
    CARD_INFO_PIN_LENGTH,
    CARD_INFO_PIN_MAX_TRIES,
    COLLATION_A_TRIES,
    COLLATION_B_LENGTH,
    COLLATION_B_TRIES,
    COMMON_PIN_TRIES,
    JPKI_AUTH_PIN_TRIES,
    JPKI_SIGN_PIN_TRIES,
    JPKI_TOKEN_INFO_LENGTH,
    REAL_CONTACT_ATR,
    SCP03_KVN,
    SM_LEVEL_FULL,
    Aid,
    CardInfoFile,
    CommonFile,
    JpkiFile,
    JukiFile,
    RegistryFile,
    SurfaceFile,
)
from .state import FREE, NEVER, AppState, CardState, FileState, PinState, ScpKeys, pin_rule

PROTECTED = "protected"  # no credential opens it: READ BINARY answers 6982 (JPKI EF 0009)
INDIVIDUAL_NUMBER_LENGTH = 12
BIRTH_DATE_KEY_LENGTH = 6  # 和暦 YYMMDD
MF_INTERNAL_EF = 0x001E  # selectable at MF level; READ BINARY / READ RECORD answer 6981

# Allocated sizes (bytes). RC gives card-info 0001 (17), 0003 (336), 0004 (568), 0007 (536),
# 0008 (16), 0005 (>= 256), JPKI 0006 (160), 0008 (3, no filler); the others are ours.
CARD_INFO_SIZES = {
    CardInfoFile.INDIVIDUAL_NUMBER: 17, CardInfoFile.ATTRIBUTES: 1024,
    CardInfoFile.INTEGRITY: 336, CardInfoFile.CV_CERTIFICATE: 568,
    CardInfoFile.BASIC_INFO: 512, CardInfoFile.SESSION_KEY: 272,
    CardInfoFile.SIGNED_KEY: 536, CardInfoFile.UNKNOWN_0008: 16,
}
SURFACE_SIZES = {
    SurfaceFile.AGE_RECORD: 560, SurfaceFile.FACE: 0x7FFF, SurfaceFile.BASIC_INFO: 384,
    SurfaceFile.CV_CERTIFICATE: 568, SurfaceFile.RENDERED_NUMBER: 4096,
    SurfaceFile.UNKNOWN_0006: 16,
}
JPKI_CERTIFICATE_SIZE = 4096
JPKI_CERT_AVAILABILITY_SIZE = 3
JPKI_0009 = 0x0009
JPKI_0009_SIZE = 256


def _fid(value: int) -> str:
    return f"{value:04X}"


def _digits(length: int, tries: int, max_length: int | None = None) -> PinState:
    return PinState(max_tries=tries, tries_left=tries, min_length=length,
                    max_length=max_length or length, charset=string.digits)


def _blocked_key() -> PinState:
    """A key reference blocked as issued (card-info 0012): set to an unknown value, no try."""
    pin = _digits(4, 3)
    pin.set(secrets.token_bytes(16).hex().encode("ascii"))
    pin.tries_left = 0
    return pin


def _files(sizes: dict, rules: dict) -> dict[str, FileState]:
    return {_fid(fid): FileState.allocated(size, rules.get(fid, FREE)) for fid, size in sizes.items()}


def _common_ap() -> AppState:
    return AppState(
        files={_fid(CommonFile.CARD_INFO_RECORD): FileState.record_ef(),
               _fid(CommonFile.KEY_REFERENCE): FileState.record_ef()},
        pins={_fid(CommonFile.PIN): _digits(CARD_INFO_PIN_LENGTH, COMMON_PIN_TRIES)},
        keys={_fid(CommonFile.AUTH_KEY): None},
    )


def _card_info_ap() -> AppState:
    f = CardInfoFile
    anyone = pin_rule(f.PIN, f.COLLATION_A, f.COLLATION_B)
    rules = {f.INDIVIDUAL_NUMBER: pin_rule(f.PIN, f.COLLATION_A),
             f.ATTRIBUTES: pin_rule(f.PIN, f.COLLATION_B),
             f.INTEGRITY: anyone, f.SESSION_KEY: anyone, f.SIGNED_KEY: anyone}
    return AppState(
        files=_files(CARD_INFO_SIZES, rules),
        pins={_fid(f.PIN): _digits(CARD_INFO_PIN_LENGTH, CARD_INFO_PIN_MAX_TRIES),
              _fid(f.BLOCKED_KEY): _blocked_key(),
              _fid(f.COLLATION_A): _digits(INDIVIDUAL_NUMBER_LENGTH, COLLATION_A_TRIES),
              _fid(f.COLLATION_B): _digits(COLLATION_B_LENGTH, COLLATION_B_TRIES)},
        keys={_fid(f.PRESENCE_KEY): None, _fid(f.SESSION_KEY): None},
    )


def _surface_ap() -> AppState:
    f = SurfaceFile
    rules = {f.AGE_RECORD: pin_rule(f.BIRTH_DATE_KEY),
             f.FACE: pin_rule(f.COLLATION_B, f.COLLATION_A),
             f.RENDERED_NUMBER: pin_rule(f.COLLATION_A),
             f.UNKNOWN_0006: pin_rule(f.COLLATION_B, f.COLLATION_A)}
    return AppState(
        files=_files(SURFACE_SIZES, rules),
        pins={_fid(f.BIRTH_DATE_KEY): _digits(BIRTH_DATE_KEY_LENGTH, BIRTH_DATE_KEY_TRIES),
              _fid(f.COLLATION_B): _digits(COLLATION_B_LENGTH, COLLATION_B_TRIES),
              _fid(f.COLLATION_A): _digits(INDIVIDUAL_NUMBER_LENGTH, COLLATION_A_TRIES)},
        keys={_fid(f.PRESENCE_KEY): None},
    )


def _jpki_ap() -> AppState:
    auth_pin, sign_pin = _fid(JpkiFile.AUTH_PIN), _fid(JpkiFile.SIGN_PIN)
    files = {_fid(fid): FileState.allocated(JPKI_CERTIFICATE_SIZE)
             for fid in (JpkiFile.AUTH_CERT, JpkiFile.AUTH_CA_CERT, JpkiFile.SIGN_CA_CERT)}
    files |= {
        _fid(JpkiFile.SIGN_CERT): FileState.allocated(JPKI_CERTIFICATE_SIZE, f"pin:{sign_pin}"),
        _fid(JpkiFile.TOKEN_INFO): FileState.allocated(JPKI_TOKEN_INFO_LENGTH),
        _fid(JpkiFile.CERT_AVAILABILITY): FileState.allocated(JPKI_CERT_AVAILABILITY_SIZE),
        _fid(JPKI_0009): FileState.allocated(JPKI_0009_SIZE, PROTECTED),
    }
    sign = PinState(max_tries=JPKI_SIGN_PIN_TRIES, tries_left=JPKI_SIGN_PIN_TRIES,
                    min_length=6, max_length=16, charset=string.ascii_uppercase + string.digits)
    return AppState(
        files=files,
        pins={auth_pin: _digits(4, JPKI_AUTH_PIN_TRIES), sign_pin: sign},
        keys={_fid(JpkiFile.AUTH_KEY): None, _fid(JpkiFile.SIGN_KEY): None},
        key_pins={_fid(JpkiFile.AUTH_KEY): auth_pin, _fid(JpkiFile.SIGN_KEY): sign_pin},
    )


def _registry_ap() -> AppState:
    """住基AP: the public parts answer in the clear; our record files need SCP03 level 33
    (``sm_level``; see ``ResidentCardOs.CLEAR_IN_SM_AP`` for what is public)."""
    return AppState(
        files={_fid(JukiFile.KEY_REFERENCE): FileState.record_ef(),
               _fid(RegistryFile.RECORD_CODE): FileState(read=FREE),
               _fid(RegistryFile.CHANGE_HISTORY): FileState(read=FREE)},
        pins={_fid(JukiFile.PIN): _digits(CARD_INFO_PIN_LENGTH, COMMON_PIN_TRIES)},
        sm_level=SM_LEVEL_FULL,
    )


def _issuer_domain(transport_keys: dict[str, bytes] | None) -> AppState:
    isd = AppState(files={_fid(MF_INTERNAL_EF): FileState(read=NEVER)})
    if transport_keys is not None:
        isd.scp = ScpKeys(SCP03_KVN, *(transport_keys[k].hex() for k in ("enc", "mac", "dek")))
    return isd


def resident_applications(transport_keys: dict[str, bytes] | None = None) -> dict[str, AppState]:
    return {
        Aid.ISSUER_SECURITY_DOMAIN.hex(): _issuer_domain(transport_keys),
        Aid.COMMON.hex(): _common_ap(),
        Aid.CARD_INFO.hex(): _card_info_ap(),
        Aid.CARD_SURFACE.hex(): _surface_ap(),
        Aid.JPKI.hex(): _jpki_ap(),
        Aid.RESIDENT_REGISTRY.hex(): _registry_ap(),
    }


def make_blank_resident_card(serial: str,
                             transport_keys: dict[str, bytes] | None = None) -> CardState:
    """A blank resident card with the real contact ATR (real-card.md §2.1, §11.1 E)."""
    return CardState(serial=serial, atr=REAL_CONTACT_ATR.hex(),
                     apps=resident_applications(transport_keys))
