"""Byte-level constants of the card protocols.

The rule: every protocol number (ISO 7816-4, GlobalPlatform and SCP03, PIV, the AES and
RSA sizes they use, our card profile) is defined exactly once. It is defined here when
more than one module uses it, or when it belongs to a table of the card profiles (AIDs,
INS codes, file IDs, GET DATA tags, P1/P2 values, PIV references and objects, PIN sizes
and tries); a number that only one codec or module uses (the tags of a file format, an
SCP03 derivation constant, a chunk size or limit of ours) is defined in that module.

Sources: ../shared/reference/card-profiles.md. Values marked "ours" are project
definitions documented in docs/protocol.md.
"""

from __future__ import annotations

from enum import Enum, IntEnum


class Aid(bytes, Enum):
    """Application identifiers, selected by DF name (never detect a card by ATR)."""

    JPKI = bytes.fromhex("D392F000260100000001")
    CARD_INFO = bytes.fromhex("D3921000310001010408")  # 券面事項入力補助AP
    CARD_SURFACE = bytes.fromhex("D3921000310001010402")  # 券面AP
    RESIDENT_REGISTRY = bytes.fromhex("D3921000310001010401")  # 住基AP (myna-card only)
    COMMON = bytes.fromhex("D3921000310001010100")  # 共通AP (myna-card only)
    ISSUER_SECURITY_DOMAIN = bytes.fromhex("A000000151000000")  # GlobalPlatform ISD
    PIV = bytes.fromhex("A000000308000010000100")  # NIST SP 800-73-4 (full AID, version 01 00)


class Ins(IntEnum):
    INITIALIZE_UPDATE = 0x50  # GlobalPlatform SCP03
    EXTERNAL_AUTHENTICATE = 0x82
    PUT_KEY = 0xD8  # GlobalPlatform
    PUT_DATA = 0xDA
    VERIFY = 0x20
    CHANGE_REFERENCE_DATA = 0x24
    COMPUTE_DIGITAL_SIGNATURE = 0x2A  # JPKI: 80 2A 00 80 (PSO-like, proprietary class)
    GENERATE_KEY_PAIR = 0x46  # ISO 7816-8 GENERATE ASYMMETRIC KEY PAIR
    GET_CHALLENGE = 0x84
    INTERNAL_AUTHENTICATE = 0x88
    SELECT = 0xA4
    READ_BINARY = 0xB0
    GET_RESPONSE = 0xC0
    GET_DATA = 0xCA
    UPDATE_BINARY = 0xD6
    SET_STATUS = 0xF0  # GlobalPlatform


# ---- ISO 7816-4 -------------------------------------------------------------------------

CLA_CHAINING = 0x10  # command chaining: "more segments follow"
CLA_SECURE_MESSAGING = 0x04  # GP SCP03: the command carries a C-MAC
SHORT_MAX_LC = 255  # the largest Lc of a short APDU
TAG_AID = 0x4F  # application identifier (PUT KEY target, PIV discovery and SELECT answer)

# ---- GlobalPlatform SCP03 ------------------------------------------------------------------

SCP03_ID = 0x03  # the protocol byte of the INITIALIZE UPDATE answer
KEY_TYPE_AES = 0x88  # PUT KEY key component type
SCP03_KVN = 0x30  # ours: the key version of the issuer domain's and the registry AP's keys
SM_LEVEL_FULL = 0x33  # C-MAC, C-DEC, R-MAC, R-ENC: personalisation and the registry AP
KCV_INPUT = b"\x01" * 16  # Amendment D: the KCV of an AES key is E(K, 01..01)[:3]
AES_BLOCK = 16
RSA_2048_BYTES = 256  # an RSA-2048 modulus, and so every signature of the card keys


class CommonFile(IntEnum):
    CARD_INFO_RECORD = 0x0001
    AUTH_KEY = 0x0019


class JpkiFile(IntEnum):
    SIGN_CERT = 0x0001  # carries the 4 information; read after the sign PIN
    SIGN_CA_CERT = 0x0002
    TOKEN_INFO = 0x0006
    AUTH_CERT = 0x000A
    AUTH_CA_CERT = 0x000B
    AUTH_KEY = 0x0017
    AUTH_PIN = 0x0018
    SIGN_KEY = 0x001A
    SIGN_PIN = 0x001B


JPKI_TOKEN_INDIVIDUAL_NUMBER_CARD = "JPKIAPICCTOKEN2"
JPKI_TOKEN_INFO_LENGTH = 32
JPKI_AUTH_PIN_TRIES = 3
JPKI_SIGN_PIN_TRIES = 5


class CardInfoFile(IntEnum):
    INDIVIDUAL_NUMBER = 0x0001
    ATTRIBUTES = 0x0002
    INTEGRITY = 0x0003
    BASIC_INFO = 0x0005
    PIN = 0x0011


class RegistryFile(IntEnum):
    """Resident-registry AP (ours)."""

    RECORD_CODE = 0x0001
    CHANGE_HISTORY = 0x0002


P1P2_CHANGE_CODE = 0x0001  # PUT DATA in the resident-registry AP (ours)


class LifeCycle(IntEnum):
    """GlobalPlatform card life-cycle states (GP Card Spec 5.1.1)."""

    OP_READY = 0x01  # blank: file structure present, accepts personalisation
    INITIALIZED = 0x07
    SECURED = 0x0F  # personalised and locked
    CARD_LOCKED = 0x7F
    TERMINATED = 0xFF


# GET DATA tags answered by the issuer security domain.
TAG_CARD_IMAGE_NUMBER = 0x0045  # GP "Card Image Number": the card serial (15 ASCII digits)
TAG_LIFE_CYCLE = 0x9F70  # ours: one byte, the LifeCycle value

SELECT_BY_DF_NAME = 0x04
SELECT_EF_UNDER_DF = 0x02
P2_NO_RESPONSE_DATA = 0x0C
P2_RETURN_FCI = 0x00
P2_SELECTED_KEY = 0x80  # "key/PIN of the currently selected EF"

CARD_INFO_PIN_MAX_TRIES = 3
CARD_INFO_PIN_LENGTH = 4


# ---- PIV (NIST SP 800-73-4): the operator card ------------------------------------------

PIV_RID = bytes.fromhex("A000000308")
PIV_PIX = bytes.fromhex("000010000100")


class PivIns(IntEnum):
    VERIFY = 0x20
    CHANGE_REFERENCE_DATA = 0x24
    RESET_RETRY_COUNTER = 0x2C
    GENERATE_ASYMMETRIC_KEY_PAIR = 0x47
    GENERAL_AUTHENTICATE = 0x87
    GET_DATA = 0xCB
    PUT_DATA = 0xDB


class PivKeyRef(IntEnum):
    """Key references (P2 of VERIFY/GENERAL AUTHENTICATE...)."""

    PIN = 0x80  # PIV Card Application PIN
    PUK = 0x81
    AUTHENTICATION = 0x9A  # PIV Authentication key: after the PIN
    MANAGEMENT = 0x9B  # card management (administration) key
    CARD_AUTHENTICATION = 0x9E  # no PIN


class PivAlgorithm(IntEnum):
    AES_128 = 0x08
    RSA_2048 = 0x07
    ECC_P256 = 0x11
    ECC_P384 = 0x14


class PivObject(IntEnum):
    """BER-TLV tags of the data objects (GET DATA / PUT DATA)."""

    CARD_AUTH_CERT = 0x5FC101
    CHUID = 0x5FC102
    AUTH_CERT = 0x5FC105
    DISCOVERY = 0x7E


PIV_CERT_OF_KEY = {PivKeyRef.AUTHENTICATION: PivObject.AUTH_CERT,
                   PivKeyRef.CARD_AUTHENTICATION: PivObject.CARD_AUTH_CERT}
PIV_GET_DATA_P1P2 = 0x3FFF
PIV_VERIFY_RESET = 0xFF  # VERIFY P1 (no data): reset the key reference's security status
PIV_PIN_LENGTH = 8  # PIN and PUK travel FF-padded to 8 bytes
PIV_PIN_MIN, PIV_PIN_MAX = 6, 8
PIV_PIN_TRIES = 3
PIV_PUK_TRIES = 3
PIV_DEFAULT_PIN = "123456"  # the factory values of a blank card (as YubiKeys ship)
PIV_DEFAULT_PUK = "12345678"
