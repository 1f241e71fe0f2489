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
    CARD_SURFACE = bytes.fromhex("D3921000310001010402")  # 券面事項確認AP
    RESIDENT_REGISTRY = bytes.fromhex("D3921000310001010401")  # 住基AP (our record inside)
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
    READ_RECORD = 0xB2
    UPDATE_RECORD = 0xDC  # personalisation of record EFs (ours, under SCP03 only)
    CHANGE_KEY = 0x32  # JICSAP CHANGE KEY 80 32 00 80: 共通AP/住基AP PIN 001C
    SET_SESSION_KEY = 0xAE  # 80 AE 00 00: the card-info AP's secure messaging
    SET_PUBLIC_IC_KEY = 0xA2  # 80 A2: terminal CV certificate (P1/P2 unknown: 6A86)
    LAST_COMMAND = 0xFC  # 80 FC 00 00: iPhone token profile only; cards answer 6700
    ERASE_BINARY = 0x0E  # ISO 7816-4 00 0E P1P2: the EF from offset P1P2 back to FF filler
    RESET_RETRY_COUNTER = 0x2C  # ISO 7816-4 00 2C 02 P2 <new>: counter session (ours)


# ---- ISO 7816-4 -------------------------------------------------------------------------

CLA_CHAINING = 0x10  # command chaining: "more segments follow"
CLA_SECURE_MESSAGING = 0x04  # GP SCP03: the command carries a C-MAC
CLA_CHANNEL_MASK = 0x03  # logical channel bits: the real card answers 6881 to any but 0
CLA_TEXT_SM = 0x08  # the card-info AP's secure messaging (header not authenticated)
CLA_TEXT_SM_AUTHENTICATED_HEADER = 0x0C  # refused by the real card with 6987
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
    """共通AP (real-card.md §8): record-structured EFs."""

    CARD_INFO_RECORD = 0x0001  # record 1: 01 1C serial(15) municipality(5) expiry(8)
    KEY_REFERENCE = 0x0002  # 16-byte key reference, equal to the 住基AP's EF 0002
    AUTH_KEY = 0x0019  # INTERNAL AUTHENTICATE 00 88 00 99, no credential
    PIN = 0x001C  # 4-digit PIN, changed with CHANGE KEY 80 32 00 80


class JpkiFile(IntEnum):
    SIGN_CERT = 0x0001  # carries the 4 information; read after the sign PIN
    SIGN_CA_CERT = 0x0002
    TOKEN_INFO = 0x0006  # 160-byte big-endian CK_TOKEN_INFO
    CERT_AVAILABILITY = 0x0008  # 3 bytes: 8F 8F 00 with both certificates
    AUTH_CERT = 0x000A
    AUTH_CA_CERT = 0x000B
    AUTH_KEY = 0x0017
    AUTH_PIN = 0x0018
    SIGN_KEY = 0x001A
    SIGN_PIN = 0x001B


JPKI_TOKEN_INDIVIDUAL_NUMBER_CARD = "JPKIAPICCTOKEN2"
JPKI_TOKEN_INFO_LENGTH = 160  # the whole CK_TOKEN_INFO; its first 32 bytes are the label
JPKI_TOKEN_LABEL_LENGTH = 32
JPKI_AUTH_PIN_TRIES = 3
JPKI_SIGN_PIN_TRIES = 5


class CardInfoFile(IntEnum):
    """券面事項入力補助AP (real-card.md §4)."""

    INDIVIDUAL_NUMBER = 0x0001  # FF 10 0C <12 digits> + FF FF filler (17 bytes physical)
    ATTRIBUTES = 0x0002  # FF 20 { DF21 offsets from byte 0 of the file, DF22..DF25 }
    INTEGRITY = 0x0003  # FF 30 { DF31, DF32, DF33 }
    CV_CERTIFICATE = 0x0004  # 7F21, issued under x000033; free
    BASIC_INFO = 0x0005  # FF 40 { DF41, DF42, DF43 }; free
    SESSION_KEY = 0x0006  # A1 { 90, 91 }: RSA key for SET SESSION KEY
    SIGNED_KEY = 0x0007  # FF 50 { DF51 AP key, DF52 signature by the 0004 key }
    UNKNOWN_0008 = 0x0008  # sixteen FF bytes
    PIN = 0x0011  # 4-digit PIN: opens 0001 and 0002
    BLOCKED_KEY = 0x0012  # blocked as issued: 63C0 / 6984
    PRESENCE_KEY = 0x0013  # 80 2A 00 00 with no credential; public half in 0007 DF51
    COLLATION_A = 0x0014  # 照合番号A = the individual number: opens 0001, not 0002
    COLLATION_B = 0x0015  # 照合番号B: 和暦 YYMMDD + expiry year + code; opens 0002, not 0001


class SurfaceFile(IntEnum):
    """券面事項確認AP (real-card.md §5)."""

    AGE_RECORD = 0x0001  # FF 10 { DF11 birth date, DF12 card key, DF13 signature }
    FACE = 0x0002  # FF 20 { DF21 nine offsets, DF22..DF2A }
    BASIC_INFO = 0x0003  # FF 30 { DF31..DF35 }; free
    CV_CERTIFICATE = 0x0004  # 7F21, issued under x000023; free
    RENDERED_NUMBER = 0x0005  # FF 40 { DF41 PNG, DF42 card key, DF43 signature }
    UNKNOWN_0006 = 0x0006  # sixteen FF bytes
    BIRTH_DATE_KEY = 0x0011  # 生年月日 as 和暦 YYMMDD: opens 0001 only
    COLLATION_B = 0x0012  # opens 0002 0003 0004 0006
    COLLATION_A = 0x0013  # opens 0002 0003 0004 0005 0006
    PRESENCE_KEY = 0x001A  # 80 2A 00 00 with no credential


class JukiFile(IntEnum):
    """住基AP: the public parts (real-card.md §9); our record files are RegistryFile."""

    KEY_REFERENCE = 0x0002  # record EF: 16-byte key reference (= 共通AP EF 0002)
    PIN = 0x001C  # 4-digit PIN, CHANGE KEY 80 32 00 80


class RegistryFile(IntEnum):
    """Our resident-record files inside the 住基AP, behind SCP03 (ours)."""

    RECORD_CODE = 0x0003
    CHANGE_HISTORY = 0x0004


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


class MfDataObject(IntEnum):
    """GET DATA tags at MF level (no AP selected, or the ISD): real-card.md §3."""

    ISSUER_ID = 0x0042  # 16-byte key reference
    CARD_ID = 0x0045  # card identification number, ASCII
    CARD_RECOGNITION = 0x0066  # GlobalPlatform card recognition data
    MUNICIPALITY = 0x00F0  # 全国地方公共団体コード, 5 ASCII digits
    EXPIRY = 0x00F2  # 8 ASCII digits YYYYMMDD
    INTERMEDIATE_ISSUER = 0x00F7  # 証明者鍵ID of the key that signs 7F21
    ROOT_CV_CERTIFICATE = 0x00F8  # CV certificate under x000020 (contents: 5F4E.. 5F37..)
    CV_CERTIFICATE = 0x7F21  # the intermediate's CV certificate (contents, no template)
    CONTACT_ATR = 0x5F51  # the ATR without its leading 3B


REAL_CONTACT_ATR = bytes.fromhex("3BE000FF8131FE4514")  # OpenSC's JPKI ATR; TCK 14

SELECT_BY_DF_NAME = 0x04
SELECT_EF_UNDER_DF = 0x02
P2_NO_RESPONSE_DATA = 0x0C
P2_RETURN_FCI = 0x00
P2_SELECTED_KEY = 0x80  # "key/PIN of the currently selected EF"
P1_RESET_WITH_NEW_VALUE = 0x02  # RESET RETRY COUNTER: new reference data, no reset code

CARD_INFO_PIN_MAX_TRIES = 3  # ours: the real retry limit is not published
CARD_INFO_PIN_LENGTH = 4
COLLATION_A_TRIES = 10  # ours: not published (B's 10 is)
COLLATION_B_TRIES = 10  # measured on the card-info AP's 0015
COLLATION_B_LENGTH = 14
BIRTH_DATE_KEY_TRIES = 10  # ours: not published
COMMON_PIN_TRIES = 3  # ours: 共通AP/住基AP PIN 001C limits are not published


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
