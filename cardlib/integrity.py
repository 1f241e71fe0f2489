"""Card-info AP EF 0003, the integrity record: ``FF 30 { DF 31 SHA-256 of the number
object (EF 0001), DF 32 SHA-256 of the attributes object (EF 0002), DF 33 signature }``
(layout per myna-card). The hashes cover the BER-TLV object each file holds (without
the FF filler); the signature is the issuer's sha256WithRSAEncryption over
DF 31 ‖ DF 32 as encoded. Checking the signature needs the signer's key; checking the
hashes needs nothing."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from . import tlv
from .errors import CardDataError

TAG_RECORD = 0xFF30
TAG_NUMBER_HASH = 0xDF31
TAG_ATTRIBUTES_HASH = 0xDF32
TAG_SIGNATURE = 0xDF33


@dataclass(frozen=True)
class IntegrityRecord:
    number_hash: bytes
    attributes_hash: bytes
    signature: bytes

    def signed_part(self) -> bytes:
        return signed_part(self.number_hash, self.attributes_hash)

    def mismatches(self, number_object: bytes, attributes_object: bytes) -> list[str]:
        """Which files no longer match their recorded hash (constant-time compares)."""
        found = []
        number_hash, attributes_hash = hashes_of(number_object, attributes_object)
        if not hmac.compare_digest(number_hash, self.number_hash):
            found.append("individual number (EF 0001, DF31)")
        if not hmac.compare_digest(attributes_hash, self.attributes_hash):
            found.append("4 information (EF 0002, DF32)")
        return found


def signed_part(number_hash: bytes, attributes_hash: bytes) -> bytes:
    return tlv.Tlv(TAG_NUMBER_HASH, number_hash).encode() + tlv.Tlv(TAG_ATTRIBUTES_HASH,
                                                                      attributes_hash).encode()


def hashes_of(number_object: bytes, attributes_object: bytes) -> tuple[bytes, bytes]:
    return hashlib.sha256(number_object).digest(), hashlib.sha256(attributes_object).digest()


def encode_integrity_record(number_hash: bytes, attributes_hash: bytes, signature: bytes) -> bytes:
    return tlv.Tlv.build(TAG_RECORD, signed_part(number_hash, attributes_hash),
                         tlv.Tlv(TAG_SIGNATURE, signature)).encode()


def decode_integrity_record(raw: bytes) -> IntegrityRecord:
    fields = tlv.parse_template(raw, TAG_RECORD, "integrity record")
    for tag, name in ((TAG_NUMBER_HASH, "DF31"), (TAG_ATTRIBUTES_HASH, "DF32"),
                      (TAG_SIGNATURE, "DF33")):
        if tag not in fields:
            raise CardDataError(f"integrity record: {name} missing")
    if len(fields[TAG_NUMBER_HASH]) != 32 or len(fields[TAG_ATTRIBUTES_HASH]) != 32:
        raise CardDataError("integrity record: hashes must be 32 bytes (SHA-256)")
    return IntegrityRecord(fields[TAG_NUMBER_HASH], fields[TAG_ATTRIBUTES_HASH],
                           fields[TAG_SIGNATURE])
