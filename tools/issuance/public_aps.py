"""Personalising the 共通AP, the JPKI AP and the 住基AP's public parts (RC §7–§9).

- 共通AP: record 1 of EF ``0001`` (``01 1C`` serial, municipality, expiry), record 1 of EF
  ``0002`` (the 16-byte key reference: ours is the key ID of ``cv-mf-intermediate``, the
  key that certifies this AP's key in MF ``7F21``), key ``0019`` generated on the card,
  PIN ``001C`` = the card-info PIN;
- JPKI: two key pairs generated on the card and certified in the token (auth by
  ``resident-issuing-ca``, signature by ``resident-sign-ca``: ``jpki_certs``), the
  certificates and their CA certificates, EF ``0006`` the 160-byte CK_TOKEN_INFO, EF
  ``0008`` ``8F 8F 00``, the two PINs;
- 住基AP: record 1 of EF ``0002`` (the same 16 bytes as the 共通AP's) and PIN ``001C``.
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from cardlib.apps.base import WritableApSession
from cardlib.channel import ApduChannel
from cardlib.constants import Aid, CommonFile, JpkiFile, JukiFile
from cardlib.jpki_token_info import TokenInfo, encode_token_info
from cardlib.records import CardInfoRecord, encode_card_info_record

from .jpki_certs import (
    IssuedCertificate,
    JpkiSigners,
    issue_jpki_certificate,
    jpki_not_after,
    write_jpki_certificate,
)
from .request import IdentityRequest

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


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def token_info(serial: str) -> bytes:
    """EF 0006: the label of the real card, our manufacturer and model, the serial's tail."""
    return encode_token_info(TokenInfo.for_card(
        serial_number=serial.rjust(TOKEN_SERIAL_LENGTH, "0"), manufacturer=TOKEN_MANUFACTURER,
        model=TOKEN_MODEL))


def personalise_jpki_ap(channel: ApduChannel, signers: JpkiSigners, serial: str,
                        expiry: dt.date, request: IdentityRequest, auth_pin: str, sign_pin: str,
                        issued: dt.date, crl_base_url: str
                        ) -> tuple[IssuedCertificate, IssuedCertificate]:
    """Two RSA-2048 key pairs generated on the card; the auth key certified by the auth CA
    (``resident-issuing-ca``), the signature key (its certificate carrying the 4
    information) by ``resident-sign-ca``, each until the 5th birthday after ``issued``
    (at most ``expiry``); PINs set. Returns the two certificates (auth, sign)."""
    jpki = WritableApSession(channel, Aid.JPKI)
    jpki.select()
    keys = {"jpki-auth": jpki.generate_rsa_key(JpkiFile.AUTH_KEY),
            "jpki-sign": jpki.generate_rsa_key(JpkiFile.SIGN_KEY)}
    not_after = jpki_not_after(request.birth_date, issued, expiry)
    auth, sign = (issue_jpki_certificate(signers, kind, key, serial, not_after, request,
                                         crl_base_url) for kind, key in keys.items())
    write_jpki_certificate(jpki, auth.kind, auth.certificate)
    jpki.write_file(JpkiFile.AUTH_CA_CERT, _der(signers.auth.certificate))
    write_jpki_certificate(jpki, sign.kind, sign.certificate)
    jpki.write_file(JpkiFile.SIGN_CA_CERT, _der(signers.sign.certificate))
    jpki.write_file(JpkiFile.TOKEN_INFO, token_info(serial))
    jpki.write_file(JpkiFile.CERT_AVAILABILITY, CERT_AVAILABILITY_BOTH)
    jpki.set_pin(JpkiFile.AUTH_PIN, auth_pin)
    jpki.set_pin(JpkiFile.SIGN_PIN, sign_pin)
    return auth, sign
