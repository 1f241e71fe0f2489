"""Personalising the card-info AP (券面事項入力補助AP, RC §4) as the real card has it.

Files (UPDATE BINARY into the card maker's FF-filled EFs, so each object is followed by
its filler): ``0001`` the individual number (17 bytes physical), ``0002`` the 4
information with file-based DF21 offsets, ``0003`` the integrity record (DF31 over the
physical ``0001``, DF32 over the FF20 value without DF21, DF33 by ``cv-card-info-signer``
in the token), ``0004`` our CV certificate 7000033 → 7000031, ``0005`` the AP basic data
(ours: docs/resident-card.md), ``0006`` the public half of the SET SESSION KEY key and
``0007`` the signed public half of the presence key ``0013``, both generated on the card,
``0008`` sixteen ``FF``. Keys ``0011`` (PIN), ``0014`` (照合番号A = the individual
number), ``0015`` (照合番号B); ``0012`` stays blocked as the card maker delivered it.
"""

from __future__ import annotations

import hashlib

from cardlib.apps.base import WritableApSession
from cardlib.card_info_records import (
    BasicInfo,
    decode_signed_key,
    encode_basic_info,
    encode_session_key_file,
    encode_signed_key,
)
from cardlib.channel import ApduChannel
from cardlib.constants import Aid, CardInfoFile
from cardlib.cv_certificate import encode_card_rsa_key
from cardlib.integrity import (
    attributes_digest,
    encode_integrity_record,
    number_digest,
    signed_part,
)
from cardlib.records import encode_four_info, encode_individual_number
from hsm.cv_hierarchy import CvHierarchy, CvSigner

from .request import IdentityRequest

# EF 0005 DF41 (RC §4.5: spec version, extended Lc/Le, vendor ID, vendor-specific): the
# real card's 01 03 with vendor 00 ("not a registered vendor": ours) and option 01.
BASIC_INFO_VERSION = bytes.fromhex("01030001")
UNKNOWN_0008 = b"\xff" * 16
NUMBER_FILE_SIZE = 17  # the physical EF 0001 (RC §4.1)


def integrity_record(signer: CvSigner, physical_number_file: bytes, attributes_file: bytes) -> bytes:
    """EF 0003: DF31 over the physical EF 0001, DF32 over EF 0002 without DF21, DF33
    signed in the token by the key EF 0004 certifies."""
    number, attributes = number_digest(physical_number_file), attributes_digest(attributes_file)
    return encode_integrity_record(number, attributes, signer.sign(signed_part(number, attributes)))


def basic_info(hierarchy: CvHierarchy, presence_key_tlv: bytes) -> bytes:
    """EF 0005 (ours): DF41 ``01 03 00 01``, DF42 the key ID of the CA that certified EF
    0004 (the anchor a verifier needs), DF43 SHA-256 of EF 0007's DF51 object (a
    fingerprint of the card's presence key) followed by 96 ``FF`` as on the real card."""
    return encode_basic_info(BasicInfo(
        version=BASIC_INFO_VERSION,
        key_id=hierarchy.card_info_certificate.issuer.raw,
        digest=hashlib.sha256(presence_key_tlv).digest()))


def personalise_card_info_ap(secure: ApduChannel, hierarchy: CvHierarchy,
                             request: IdentityRequest, card_info_pin: str,
                             collation_b: str) -> None:
    """Everything the card-info AP holds; ``secure`` is the issuer's SCP03 channel."""
    ap = WritableApSession(secure, Aid.CARD_INFO)
    ap.select()
    attributes = encode_four_info(request.four_info())
    number_file = (encode_individual_number(request.individual_number)
                   if request.individual_number else None)
    if number_file is not None:
        ap.write_file(CardInfoFile.INDIVIDUAL_NUMBER, number_file)
    ap.write_file(CardInfoFile.ATTRIBUTES, attributes)
    # Without an individual number EF 0001 stays erased: DF31 covers its filler as read.
    physical_number = number_file if number_file is not None else b"\xff" * NUMBER_FILE_SIZE
    ap.write_file(CardInfoFile.INTEGRITY, integrity_record(
        hierarchy.card_info_signer, physical_number, attributes))
    ap.write_file(CardInfoFile.CV_CERTIFICATE, hierarchy.card_info_certificate.encode())
    session_key = ap.generate_rsa_key(CardInfoFile.SESSION_KEY)
    ap.write_file(CardInfoFile.SESSION_KEY, encode_session_key_file(session_key))
    presence = ap.generate_rsa_key(CardInfoFile.PRESENCE_KEY)
    signed_key = encode_signed_key(encode_card_rsa_key(presence), hierarchy.card_info_signer.sign)
    ap.write_file(CardInfoFile.SIGNED_KEY, signed_key)
    ap.write_file(CardInfoFile.BASIC_INFO, basic_info(
        hierarchy, decode_signed_key(signed_key).signed_part()))
    ap.write_file(CardInfoFile.UNKNOWN_0008, UNKNOWN_0008)
    ap.set_pin(CardInfoFile.PIN, card_info_pin)
    if request.individual_number:
        ap.set_pin(CardInfoFile.COLLATION_A, request.individual_number)
    ap.set_pin(CardInfoFile.COLLATION_B, collation_b)

