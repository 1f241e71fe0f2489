"""Card-info AP EF 0003, the integrity record (RC §4.4), measured on real test cards:

``FF 30 82 01 4B { DF 31 20 <SHA-256 of the PHYSICAL EF 0001, filler included>,
DF 32 20 <SHA-256 of EF 0002's FF20 value without the DF21 offset table: the DF22..DF25
objects, no outer header, no filler>, DF 33 82 01 00 <PKCS#1 v1.5 / SHA-256 signature
over the 70 bytes DF31-TLV ‖ DF32-TLV> }`` — 336 bytes, then filler. The signer is the
key certified by this AP's EF 0004 (a CV certificate), not the card's key.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa

from . import tlv
from .card_tlv import card_tlv, children_in_order, fixed, object_and_filler
from .digestinfo import rsa_sha256_signature_verifies
from .errors import CardDataError

TAG_RECORD = 0xFF30
TAG_NUMBER_DIGEST = 0xDF31
TAG_ATTRIBUTES_DIGEST = 0xDF32
TAG_SIGNATURE = 0xDF33
TAG_ATTRIBUTES = 0xFF20
TAG_OFFSETS = 0xDF21
DIGEST_LENGTH = 32
SIGNATURE_LENGTH = 256
RECORD_LENGTH = 336
WHAT = "integrity record"


def number_digest(physical_ef_0001: bytes) -> bytes:
    """DF31: SHA-256 of the physical EF 0001 as read (``FF 10 0C <12 digits> FF FF``)."""
    return hashlib.sha256(bytes(physical_ef_0001)).digest()


def attributes_digest(ef_0002: bytes) -> bytes:
    """DF32: SHA-256 of the FF20 value without its leading DF21 object (trimmed or
    physical file; filler after the object is ignored)."""
    outer, _ = object_and_filler(ef_0002, TAG_ATTRIBUTES, "attributes file (for DF32)")
    try:
        first, end = tlv.parse_one(outer.value)
    except CardDataError as exc:
        raise CardDataError(f"attributes file (for DF32): malformed ({exc})") from None
    if first.tag != TAG_OFFSETS:
        raise CardDataError("attributes file (for DF32): offsets DF21 missing")
    return hashlib.sha256(outer.value[end:]).digest()


def signed_part(number_digest_: bytes, attributes_digest_: bytes) -> bytes:
    """The 70 signed bytes: DF31-TLV ‖ DF32-TLV."""
    return (card_tlv(TAG_NUMBER_DIGEST, fixed(number_digest_, DIGEST_LENGTH, "DF31"))
            + card_tlv(TAG_ATTRIBUTES_DIGEST, fixed(attributes_digest_, DIGEST_LENGTH, "DF32")))


@dataclass(frozen=True)
class IntegrityRecord:
    number_digest: bytes
    attributes_digest: bytes
    signature: bytes

    def signed_part(self) -> bytes:
        return signed_part(self.number_digest, self.attributes_digest)

    def verifies_under(self, signer: rsa.RSAPublicKey) -> bool:
        """DF33 under the key of EF 0004's holder."""
        return rsa_sha256_signature_verifies(signer, self.signature, self.signed_part())

    def mismatches(self, physical_ef_0001: bytes | None, ef_0002: bytes | None) -> list[str]:
        """Which of the files given (None = not checked) no longer match (constant time)."""
        found = []
        if physical_ef_0001 is not None and not hmac.compare_digest(
                number_digest(physical_ef_0001), self.number_digest):
            found.append("individual number (EF 0001, DF31)")
        if ef_0002 is not None and not hmac.compare_digest(
                attributes_digest(ef_0002), self.attributes_digest):
            found.append("4 information (EF 0002, DF32)")
        return found


def encode_integrity_record(number_digest_: bytes, attributes_digest_: bytes,
                            signature: bytes) -> bytes:
    """336 bytes ``FF 30 82 01 4B { DF31, DF32, DF 33 82 01 00 <256> }``."""
    if len(signature) != SIGNATURE_LENGTH:
        raise ValueError(f"integrity record: DF33 must be {SIGNATURE_LENGTH} bytes")
    return card_tlv(TAG_RECORD, signed_part(number_digest_, attributes_digest_)
                    + card_tlv(TAG_SIGNATURE, signature))


def decode_integrity_record(raw: bytes) -> IntegrityRecord:
    """EF 0003 (filler after the record tolerated); sizes exactly as measured."""
    outer, _ = object_and_filler(raw, TAG_RECORD, WHAT)
    parts = children_in_order(outer.value, ((TAG_NUMBER_DIGEST, "DF31"),
                                            (TAG_ATTRIBUTES_DIGEST, "DF32"),
                                            (TAG_SIGNATURE, "DF33")), WHAT)
    return IntegrityRecord(
        fixed(parts[0][0].value, DIGEST_LENGTH, f"{WHAT}: DF31 (SHA-256)"),
        fixed(parts[1][0].value, DIGEST_LENGTH, f"{WHAT}: DF32 (SHA-256)"),
        fixed(parts[2][0].value, SIGNATURE_LENGTH, f"{WHAT}: DF33 (signature)"),
    )
