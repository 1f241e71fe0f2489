"""The card-info AP's key and basic-data files (RC §4.5, §4.6):

- EF 0005 ``FF 40 82 00 9F { DF 41 04 <version, ext. Lc/Le, vendor, option>, DF 42 10
  <key ID>, DF 43 82 00 80 <32 bytes + 96 × FF> }`` — not signed. The ``82 00 xx``
  length form for 128–255 is what RC §2.2 infers from ``FF 40 82 00 9F``; ``81 xx`` is
  accepted on decode.
- EF 0006 ``A1 82 01 09 { 90 03 01 00 01, 91 82 01 00 <modulus> }`` — the RSA key of
  SET SESSION KEY, unsigned.
- EF 0007 ``FF 50 82 02 13 { DF 51 82 01 09 <265-byte card key>, DF 52 82 01 00 <sig> }``
  — the AP's presence key, signed (PKCS#1 v1.5 / SHA-256 over the 270-byte DF51 TLV) by
  the key EF 0004 certifies.

Every decoder takes the trimmed or the physical file (filler after the object).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa

from .card_tlv import card_tlv, children_in_order, fixed, object_and_filler
from .cv_certificate import CARD_RSA_KEY_LENGTH, KeyId, decode_card_rsa_key, encode_card_rsa_key
from .digestinfo import rsa_sha256_signature_verifies
from .errors import CardDataError

TAG_BASIC_INFO, TAG_VERSION, TAG_KEY_ID, TAG_DIGEST = 0xFF40, 0xDF41, 0xDF42, 0xDF43
TAG_SESSION_KEY_FILE = 0xA1
TAG_SIGNED_KEY, TAG_KEY_OBJECT, TAG_KEY_SIGNATURE = 0xFF50, 0xDF51, 0xDF52
VERSION_LENGTH = 4
DIGEST_LENGTH = 32
DF43_LENGTH = 128  # 32 bytes, then 96 × FF on every card seen (RC §4.5)
SIGNATURE_LENGTH = 256


@dataclass(frozen=True)
class BasicInfo:
    """EF 0005. ``key_id`` may be given as its 16 raw bytes; it is kept as a KeyId."""

    version: bytes  # DF41: spec version, extended Lc/Le support, vendor ID, option
    key_id: KeyId  # DF42
    digest: bytes  # the 32 bytes in front of DF43's 96 × FF

    def __post_init__(self) -> None:
        if isinstance(self.key_id, bytes | bytearray):
            object.__setattr__(self, "key_id", KeyId(bytes(self.key_id)))
        if len(self.version) != VERSION_LENGTH:
            raise ValueError(f"basic info: DF41 must be {VERSION_LENGTH} bytes")
        if len(self.digest) != DIGEST_LENGTH:
            raise ValueError(f"basic info: the DF43 digest must be {DIGEST_LENGTH} bytes")

    @property
    def extended_length(self) -> bool:
        """DF41 byte 1, "extended Lc/Le support" (03 on the cards seen)."""
        return self.version[1] != 0


def encode_basic_info(info: BasicInfo) -> bytes:
    df43 = info.digest + b"\xff" * (DF43_LENGTH - DIGEST_LENGTH)
    return card_tlv(TAG_BASIC_INFO, card_tlv(TAG_VERSION, info.version)
                    + card_tlv(TAG_KEY_ID, info.key_id.raw) + card_tlv(TAG_DIGEST, df43))


def decode_basic_info(raw: bytes) -> BasicInfo:
    what = "basic info (EF 0005)"
    outer, _ = object_and_filler(raw, TAG_BASIC_INFO, what)
    (version, _), (key_id, _), (df43, _) = children_in_order(
        outer.value, ((TAG_VERSION, "DF41"), (TAG_KEY_ID, "DF42"), (TAG_DIGEST, "DF43")), what)
    fixed(version.value, VERSION_LENGTH, f"{what}: DF41")
    fixed(df43.value, DF43_LENGTH, f"{what}: DF43")
    if df43.value[DIGEST_LENGTH:] != b"\xff" * (DF43_LENGTH - DIGEST_LENGTH):
        raise CardDataError(f"{what}: DF43 does not end in 96 FF bytes")
    try:
        kid = KeyId(key_id.value)
    except CardDataError as exc:
        raise CardDataError(f"{what}: DF42: {exc}") from None
    return BasicInfo(version.value, kid, df43.value[:DIGEST_LENGTH])


def encode_session_key_file(key: rsa.RSAPublicKey) -> bytes:
    """EF 0006: ``A1 82 01 09`` + the card's 265-byte key form."""
    return card_tlv(TAG_SESSION_KEY_FILE, encode_card_rsa_key(key))


def decode_session_key_file(raw: bytes) -> rsa.RSAPublicKey:
    what = "session-key file (EF 0006)"
    outer, _ = object_and_filler(raw, TAG_SESSION_KEY_FILE, what)
    return decode_card_rsa_key(outer.value, what)


@dataclass(frozen=True)
class SessionKeyFile:
    public_key: rsa.RSAPublicKey

    def encode(self) -> bytes:
        return encode_session_key_file(self.public_key)


@dataclass(frozen=True)
class SignedKey:
    """EF 0007: the AP's presence key (DF51, 265 bytes) and the signature over it (DF52)."""

    key_object: bytes  # the DF51 value: 90 03 01 00 01 91 82 01 00 <modulus>
    signature: bytes

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return decode_card_rsa_key(self.key_object, "signed key (EF 0007): DF51")

    def signed_part(self) -> bytes:
        """The 270 signed bytes: ``DF 51 82 01 09`` + the key."""
        return card_tlv(TAG_KEY_OBJECT, self.key_object)

    def verifies_under(self, signer: rsa.RSAPublicKey) -> bool:
        return rsa_sha256_signature_verifies(signer, self.signature, self.signed_part())

    def encode(self) -> bytes:
        return card_tlv(TAG_SIGNED_KEY, self.signed_part()
                        + card_tlv(TAG_KEY_SIGNATURE, self.signature))


def encode_signed_key(card_key: bytes | rsa.RSAPublicKey, sign: Callable[[bytes], bytes]) -> bytes:
    """EF 0007 for ``card_key`` (265-byte form or a key); ``sign`` signs the DF51 TLV
    (PKCS#1 v1.5 / SHA-256, in the token) and returns 256 bytes."""
    key_object = encode_card_rsa_key(card_key) if isinstance(card_key, rsa.RSAPublicKey) \
        else bytes(card_key)
    decode_card_rsa_key(key_object, "signed key (EF 0007): DF51")
    signature = sign(card_tlv(TAG_KEY_OBJECT, key_object))
    if len(signature) != SIGNATURE_LENGTH:
        raise ValueError(f"signed key: DF52 must be {SIGNATURE_LENGTH} bytes")
    return SignedKey(key_object, bytes(signature)).encode()


def decode_signed_key(raw: bytes) -> SignedKey:
    what = "signed key (EF 0007)"
    outer, _ = object_and_filler(raw, TAG_SIGNED_KEY, what)
    (key_object, _), (signature, _) = children_in_order(
        outer.value, ((TAG_KEY_OBJECT, "DF51"), (TAG_KEY_SIGNATURE, "DF52")), what)
    fixed(key_object.value, CARD_RSA_KEY_LENGTH, f"{what}: DF51")
    decode_card_rsa_key(key_object.value, f"{what}: DF51")
    return SignedKey(key_object.value, fixed(signature.value, SIGNATURE_LENGTH, f"{what}: DF52"))
