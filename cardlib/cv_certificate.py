"""Card-verifiable certificates of the resident card (RC §6) and the card's RSA key form.

A CV certificate is ``7F 21 82 02 33 { 5F 4E 82 01 29 <297-byte body>, 5F 37 82 01 00
<256-byte signature> }``; the body is the issuer's 16-byte key ID, the holder's 16-byte
key ID and the holder's RSA-2048 key in the card's 265-byte form (RC §2.2). No validity
period, no other field. The signature is RSASSA-PKCS1-v1_5 / SHA-256 over the 297 body
bytes under the issuer's key, which is looked up by all 16 bytes of its key ID.

GET DATA ``00F8``/``7F21`` answers the *contents* of the template (starting ``5F 4E``);
a physical read of EF ``0004`` gives the template followed by filler. Both decode here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .card_tlv import check_filler
from .errors import CardDataError

TAG_CV_CERTIFICATE = 0x7F21
TAG_BODY = 0x5F4E
TAG_SIGNATURE = 0x5F37
KEY_ID_LENGTH = 16
CARD_RSA_KEY_LENGTH = 265
BODY_LENGTH = KEY_ID_LENGTH * 2 + CARD_RSA_KEY_LENGTH  # 297
SIGNATURE_LENGTH = 256
MODULUS_BITS = 2048
EXPONENT_PREFIX = bytes.fromhex("9003010001")  # 90 03 01 00 01: e = 65537
MODULUS_PREFIX = bytes.fromhex("91820100")  # 91 82 01 00
BODY_HEADER = bytes.fromhex("5F4E820129")
SIGNATURE_HEADER = bytes.fromhex("5F37820100")
TEMPLATE_HEADER = bytes.fromhex("7F21820233")
CONTENTS_LENGTH = len(BODY_HEADER) + BODY_LENGTH + len(SIGNATURE_HEADER) + SIGNATURE_LENGTH
CERTIFICATE_LENGTH = len(TEMPLATE_HEADER) + CONTENTS_LENGTH  # 568
# The CA whose key may start each chain, by the last digits of its key number (RC §6:
# 5000020/6000020 MF root, x000023 券面事項確認AP CA, x000033 券面入力補助AP CA).
CA_ROLES = {"mf": "00020", "surface": "00023", "card-info": "00033"}
_KEY_ID_TEXT = re.compile(r"^([0-9]{7})/([0-9]{3})(?: \(([0-9A-F]{2})\))?$")
_KEY_ID_MIDDLE = b"\x08\x05"
_KEY_ID_ZEROS = b"\x00\x00\x00"


class CvChainError(CardDataError):
    """A CV certificate chain does not reach an anchor or a link does not verify."""


@dataclass(frozen=True)
class KeyId:
    """A 16-byte key ID: 7 ASCII digits, ``08 05``, 3 ASCII digits, ``00 00 00``, one
    last byte (``A8`` for the x000020 keys). Written ``number/group``, with the last
    byte in parentheses when it is not zero: ``5000020/001 (A8)``."""

    raw: bytes

    def __post_init__(self) -> None:
        raw = self.raw
        if not isinstance(raw, bytes) or len(raw) != KEY_ID_LENGTH:
            raise CardDataError(f"key ID: must be {KEY_ID_LENGTH} bytes")
        if not (_ascii_digits(raw[:7]) and raw[7:9] == _KEY_ID_MIDDLE
                and _ascii_digits(raw[9:12]) and raw[12:15] == _KEY_ID_ZEROS):
            raise CardDataError("key ID: not 7 ASCII digits, 08 05, 3 ASCII digits, 00 00 00, "
                                "last byte")

    @classmethod
    def of(cls, number: str, group: str, last: int = 0) -> KeyId:
        if len(number) != 7 or len(group) != 3 or not (number + group).isdigit() or \
                not (number + group).isascii():
            raise ValueError("key ID: number must be 7 digits and group 3 digits")
        if not 0 <= last <= 0xFF:
            raise ValueError("key ID: last byte must be 0..255")
        return cls(number.encode("ascii") + _KEY_ID_MIDDLE + group.encode("ascii")
                   + _KEY_ID_ZEROS + bytes((last,)))

    @classmethod
    def parse(cls, text: str) -> KeyId:
        """``"6000023/001"`` (last byte 00) or ``"5000020/001 (A8)"``."""
        match = _KEY_ID_TEXT.match(text)
        if match is None:
            raise ValueError(f"key ID {text!r}: expected NNNNNNN/GGG or NNNNNNN/GGG (XX)")
        last = int(match.group(3), 16) if match.group(3) else 0
        return cls.of(match.group(1), match.group(2), last)

    @property
    def number(self) -> str:
        return self.raw[:7].decode("ascii")

    @property
    def group(self) -> str:
        return self.raw[9:12].decode("ascii")

    @property
    def last(self) -> int:
        return self.raw[15]

    @property
    def text(self) -> str:
        suffix = f" ({self.last:02X})" if self.last else ""
        return f"{self.number}/{self.group}{suffix}"

    def __str__(self) -> str:
        return self.text


def _ascii_digits(raw: bytes) -> bool:
    return all(0x30 <= b <= 0x39 for b in raw)


def encode_card_rsa_key(key: rsa.RSAPublicKey) -> bytes:
    """``90 03 01 00 01 91 82 01 00 <256-byte modulus>`` (265 bytes, RC §2.2)."""
    numbers = key.public_numbers()
    if numbers.e != 65537 or numbers.n.bit_length() != MODULUS_BITS:
        raise ValueError("card RSA key: must be RSA-2048 with e = 65537")
    return EXPONENT_PREFIX + MODULUS_PREFIX + numbers.n.to_bytes(256, "big")


def decode_card_rsa_key(raw: bytes, what: str = "card RSA key") -> rsa.RSAPublicKey:
    """The 265-byte form, strictly: exponent object ``90`` = 65537, modulus object ``91``
    of 256 bytes with its top bit set (2048 bits) and odd."""
    if len(raw) != CARD_RSA_KEY_LENGTH:
        raise CardDataError(f"{what}: {len(raw)} bytes, expected {CARD_RSA_KEY_LENGTH}")
    if raw[:5] != EXPONENT_PREFIX:
        raise CardDataError(f"{what}: exponent object 90 is not 90 03 01 00 01")
    if raw[5:9] != MODULUS_PREFIX:
        raise CardDataError(f"{what}: modulus object 91 is not 91 82 01 00")
    modulus = int.from_bytes(raw[9:], "big")
    if modulus.bit_length() != MODULUS_BITS or modulus % 2 == 0:
        raise CardDataError(f"{what}: modulus 91 is not an odd 2048-bit number")
    return rsa.RSAPublicNumbers(65537, modulus).public_key()


def cv_body(issuer: KeyId, holder: KeyId, key: rsa.RSAPublicKey) -> bytes:
    """The 297-byte body that the issuer signs."""
    return issuer.raw + holder.raw + encode_card_rsa_key(key)


@dataclass(frozen=True)
class CvCertificate:
    issuer: KeyId
    holder: KeyId
    public_key: rsa.RSAPublicKey
    body: bytes
    signature: bytes

    def verifies_under(self, ca_key: rsa.RSAPublicKey) -> bool:
        """RSASSA-PKCS1-v1_5 / SHA-256 over the 297 body bytes."""
        try:
            ca_key.verify(self.signature, self.body, padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            return False
        return True

    def encode(self, template: bool = True) -> bytes:
        """568 bytes ``7F 21 82 02 33 …``; ``template=False``: the GET DATA form ``5F 4E …``."""
        contents = BODY_HEADER + self.body + SIGNATURE_HEADER + self.signature
        return TEMPLATE_HEADER + contents if template else contents


def make_cv_certificate(issuer: KeyId, holder: KeyId, key: rsa.RSAPublicKey,
                        signature: bytes) -> CvCertificate:
    """A certificate from its parts (the signature made by whoever holds the issuer key)."""
    if len(signature) != SIGNATURE_LENGTH:
        raise ValueError(f"CV certificate signature must be {SIGNATURE_LENGTH} bytes")
    return CvCertificate(issuer, holder, key, cv_body(issuer, holder, key), bytes(signature))


def decode_cv_certificate(raw: bytes) -> CvCertificate:
    """The ``7F21`` template (filler after it tolerated) or its bare contents (``5F 4E``)."""
    raw = bytes(raw)
    if raw[:2] == TEMPLATE_HEADER[:2]:
        if raw[:5] != TEMPLATE_HEADER:
            raise CardDataError("CV certificate: template 7F21 must be 7F 21 82 02 33")
        contents = raw[5:CERTIFICATE_LENGTH]
        rest = raw[CERTIFICATE_LENGTH:]
    elif raw[:2] == BODY_HEADER[:2]:
        contents, rest = raw[:CONTENTS_LENGTH], raw[CONTENTS_LENGTH:]
    else:
        raise CardDataError("CV certificate: expected tag 7F21 or 5F4E")
    if len(contents) != CONTENTS_LENGTH:
        raise CardDataError(f"CV certificate: truncated ({len(contents)} of {CONTENTS_LENGTH} "
                            "content bytes)")
    check_filler(rest, "CV certificate")
    if contents[:5] != BODY_HEADER:
        raise CardDataError("CV certificate: body 5F4E must be 5F 4E 82 01 29 (297 bytes)")
    sig_at = 5 + BODY_LENGTH
    if contents[sig_at:sig_at + 5] != SIGNATURE_HEADER:
        raise CardDataError("CV certificate: signature 5F37 must be 5F 37 82 01 00 (256 bytes)")
    body = contents[5:sig_at]
    return CvCertificate(
        issuer=_key_id(body[:16], "issuer (証明者鍵ID)"),
        holder=_key_id(body[16:32], "holder (被証明者鍵ID)"),
        public_key=decode_card_rsa_key(body[32:], "CV certificate: public key"),
        body=body,
        signature=contents[sig_at + 5:],
    )


def _key_id(raw: bytes, field: str) -> KeyId:
    try:
        return KeyId(raw)
    except CardDataError as exc:
        raise CardDataError(f"CV certificate: {field}: {exc}") from None


def verify_cv_chain(chain: Sequence[CvCertificate],
                    anchors: Mapping[bytes, rsa.RSAPublicKey],
                    role: str | None = None) -> CvCertificate:
    """Root first: the first issuer must be an anchor (all 16 bytes), each next issuer the
    previous holder, each link verifying under the key above it. Returns the last.
    ``role`` (a key of ``CA_ROLES``): the anchor must be that role's CA, by its key number
    (x000020 MF root, x000023 surface, x000033 card-info, RC §6), so a certificate one CA
    issued for one AP is not accepted in another's place."""
    if not chain:
        raise CvChainError("CV chain: empty")
    first = chain[0]
    anchor = anchors.get(first.issuer.raw)
    if anchor is None:
        raise CvChainError(f"CV chain link 1: issuer {first.issuer} is not a trust anchor")
    if role is not None and not first.issuer.number.endswith(CA_ROLES[role]):
        raise CvChainError(f"CV chain link 1: issuer {first.issuer} is not a {role} CA "
                           f"(..{CA_ROLES[role]})")
    key = anchor
    previous: CvCertificate | None = None
    for index, certificate in enumerate(chain, start=1):
        if previous is not None and certificate.issuer.raw != previous.holder.raw:
            raise CvChainError(f"CV chain link {index}: issuer {certificate.issuer} is not the "
                               f"previous holder {previous.holder}")
        if not certificate.verifies_under(key):
            raise CvChainError(f"CV chain link {index}: certificate of {certificate.holder} "
                               f"does not verify under {certificate.issuer}")
        previous, key = certificate, certificate.public_key
    return chain[-1]
