"""Personalising the 共通AP, the JPKI AP and the 住基AP's public parts (RC §7–§9).

- 共通AP: record 1 of EF ``0001`` (``01 1C`` serial, municipality, expiry), record 1 of EF
  ``0002`` (the 16-byte key reference: ours is the key ID of ``cv-mf-intermediate``, the
  key that certifies this AP's key in MF ``7F21``), key ``0019`` generated on the card,
  PIN ``001C`` = the card-info PIN;
- JPKI: two key pairs generated on the card and certified by the issuing CA in the
  token, the certificates, EF ``0006`` the 160-byte CK_TOKEN_INFO, EF ``0008`` ``8F 8F 00``,
  the two PINs;
- 住基AP: record 1 of EF ``0002`` (the same 16 bytes as the 共通AP's) and PIN ``001C``.
"""

from __future__ import annotations

import datetime as dt

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from cardlib import tlv
from cardlib.apps.base import WritableApSession
from cardlib.channel import ApduChannel
from cardlib.constants import Aid, CommonFile, JpkiFile, JukiFile
from cardlib.jpki_token_info import TokenInfo, encode_token_info
from cardlib.records import CardInfoRecord, encode_card_info_record
from hsm.ca import CardCertificateRequest, TokenKey, issue_certificate

from .request import IdentityRequest

JPKI_OTHER_NAME_ARC = "1.2.392.200149.8.5.5"
UTF8_STRING = 0x0C
CERT_AVAILABILITY_BOTH = bytes.fromhex("8F8F00")  # signing and authentication present
TOKEN_MANUFACTURER = "Juki Registry Network (test)"  # ours
TOKEN_MODEL = "JUKI-EMU-1"  # ours
TOKEN_SERIAL_LENGTH = 16  # CK_TOKEN_INFO serialNumber: the 15-digit serial, 0-padded


def personalise_common_ap(secure: ApduChannel, serial: str, municipality_code: str,
                          expiry: dt.date, key_reference: bytes, pin: str) -> rsa.RSAPublicKey:
    """The 共通AP; returns the public half of key ``0019`` (certified in MF ``7F21``)."""
    common = WritableApSession(secure, Aid.COMMON)
    common.select()
    common.update_record(CommonFile.CARD_INFO_RECORD, 1, encode_card_info_record(
        CardInfoRecord(serial, municipality_code, expiry)))
    common.update_record(CommonFile.KEY_REFERENCE, 1, key_reference)
    public_key = common.generate_rsa_key(CommonFile.AUTH_KEY)
    common.set_pin(CommonFile.PIN, pin)
    return public_key


def personalise_juki_public(channel: ApduChannel, key_reference: bytes, pin: str) -> None:
    """The 住基AP's public parts, through ``channel`` (the AP already selected)."""
    juki = WritableApSession(channel, Aid.RESIDENT_REGISTRY)
    juki.update_record(JukiFile.KEY_REFERENCE, 1, key_reference)
    juki.set_pin(JukiFile.PIN, pin)


def four_info_other_names(request: IdentityRequest) -> tuple[tuple[str, bytes], ...]:
    """The 4 information as subjectAltName otherName entries (OIDs 1.2.392.200149.8.5.5.x),
    each a UTF8String."""
    values = [("1", request.name), ("2", request.name_kana), ("3", request.sex),
              ("4", request.birth_date.strftime("%Y%m%d")), ("5", request.address)]
    return tuple((f"{JPKI_OTHER_NAME_ARC}.{index}", tlv.Tlv(UTF8_STRING, value.encode()).encode())
                 for index, value in values if value)


def token_info(serial: str) -> bytes:
    """EF 0006: the label of the real card, our manufacturer and model, the serial's tail."""
    return encode_token_info(TokenInfo.for_card(
        serial_number=serial.rjust(TOKEN_SERIAL_LENGTH, "0"), manufacturer=TOKEN_MANUFACTURER,
        model=TOKEN_MODEL))


def personalise_jpki_ap(channel: ApduChannel, ca: TokenKey, serial: str, expiry: dt.date,
                        request: IdentityRequest, auth_pin: str, sign_pin: str) -> None:
    """Two RSA-2048 key pairs generated on the card, certified by the issuing CA in the
    token; the signature certificate carries the 4 information; PINs set."""
    jpki = WritableApSession(channel, Aid.JPKI)
    jpki.select()
    auth_key = jpki.generate_rsa_key(JpkiFile.AUTH_KEY)
    sign_key = jpki.generate_rsa_key(JpkiFile.SIGN_KEY)
    auth = issue_certificate(ca, CardCertificateRequest(auth_key, serial, expiry,
                                                         "JPKI User Authentication"))
    sign = issue_certificate(ca, CardCertificateRequest(
        sign_key, serial, expiry, "JPKI Digital Signature", non_repudiation=True,
        other_names=four_info_other_names(request)))
    ca_der = ca.certificate.public_bytes(serialization.Encoding.DER)
    for fid, content in ((JpkiFile.AUTH_CERT, auth.public_bytes(serialization.Encoding.DER)),
                         (JpkiFile.AUTH_CA_CERT, ca_der),
                         (JpkiFile.SIGN_CERT, sign.public_bytes(serialization.Encoding.DER)),
                         (JpkiFile.SIGN_CA_CERT, ca_der),
                         (JpkiFile.TOKEN_INFO, token_info(serial)),
                         (JpkiFile.CERT_AVAILABILITY, CERT_AVAILABILITY_BOTH)):
        jpki.write_file(fid, content)
    jpki.set_pin(JpkiFile.AUTH_PIN, auth_pin)
    jpki.set_pin(JpkiFile.SIGN_PIN, sign_pin)
