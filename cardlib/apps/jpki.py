"""JPKI AP (公的個人認証AP): certificates, PINs and on-card signatures.

Works with real individual-number cards: the host builds the DigestInfo, the card
pads and signs it (COMPUTE DIGITAL SIGNATURE ``80 2A 00 80``)."""

from __future__ import annotations

from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from ..apdu import CommandApdu
from ..constants import (
    JPKI_TOKEN_INFO_LENGTH,
    JPKI_TOKEN_LABEL_LENGTH,
    P2_SELECTED_KEY,
    RSA_2048_BYTES,
    Aid,
    Ins,
    JpkiFile,
)
from ..digestinfo import digest_info
from ..errors import CardDataError
from ..jpki_token_info import (
    CERT_AVAILABILITY_LENGTH,
    CertAvailability,
    TokenInfo,
    decode_cert_availability,
    decode_token_info,
)
from .base import ApplicationSession, PinStatus


class JpkiKey(StrEnum):
    AUTH = "auth"
    SIGN = "sign"


KEY_FILES = {JpkiKey.AUTH: (JpkiFile.AUTH_KEY, JpkiFile.AUTH_PIN),
             JpkiKey.SIGN: (JpkiFile.SIGN_KEY, JpkiFile.SIGN_PIN)}
CERT_FILES = {"auth": JpkiFile.AUTH_CERT, "auth_ca": JpkiFile.AUTH_CA_CERT,
              "sign": JpkiFile.SIGN_CERT, "sign_ca": JpkiFile.SIGN_CA_CERT}


class JpkiApSession(ApplicationSession):
    AID = Aid.JPKI

    def read_token_info(self) -> str:
        """The token label: ``JPKIAPICCTOKEN2`` (individual-number card), ``JPKIAPICCTOKEN``
        (住基カード)… Only the first 32 bytes of EF 0006 decide it (RC §7.3)."""
        self.select_ef(JpkiFile.TOKEN_INFO)
        raw = self.read_binary(0, JPKI_TOKEN_LABEL_LENGTH)
        text = raw.rstrip(b" \x00").decode("ascii", "replace")
        if not text.isascii() or not text.isprintable():
            raise CardDataError("JPKI token info: label is not printable ASCII")
        return text

    def read_token_info_record(self) -> TokenInfo:
        """All of EF 0006: the 160-byte ``CK_TOKEN_INFO`` (RC §7.3)."""
        self.select_ef(JpkiFile.TOKEN_INFO)
        return decode_token_info(self.read_binary(0, JPKI_TOKEN_INFO_LENGTH))

    def read_cert_availability(self) -> CertAvailability:
        """EF 0008: which certificates the card holds (3 bytes, free)."""
        self.select_ef(JpkiFile.CERT_AVAILABILITY)
        return decode_cert_availability(self.read_binary(0, CERT_AVAILABILITY_LENGTH))

    def read_certificate(self, which: str) -> x509.Certificate:
        """``auth``, ``auth_ca``, ``sign`` (needs the sign PIN first) or ``sign_ca``."""
        raw = self.read_tlv_file(CERT_FILES[which])
        try:
            return x509.load_der_x509_certificate(raw)
        except ValueError as exc:
            raise CardDataError(f"JPKI {which} certificate is not valid DER X.509") from exc

    def pin_status_of(self, key: JpkiKey) -> PinStatus:
        return self.pin_status(KEY_FILES[key][1])

    def verify_key_pin(self, key: JpkiKey, pin: str) -> None:
        self.verify_pin(pin, KEY_FILES[key][1])

    def sign_digest(self, key: JpkiKey, algorithm: hashes.HashAlgorithm, digest: bytes) -> bytes:
        """PKCS#1 v1.5 signature by the card over ``digest`` (after that key's PIN)."""
        self.select_ef(KEY_FILES[key][0])
        apdu = CommandApdu(0x80, Ins.COMPUTE_DIGITAL_SIGNATURE, 0x00, P2_SELECTED_KEY,
                           digest_info(algorithm, digest), 256)
        signature = self.channel.send(apdu)
        if len(signature) != RSA_2048_BYTES:
            raise CardDataError(f"COMPUTE DIGITAL SIGNATURE: {len(signature)} bytes, expected 256")
        return signature
