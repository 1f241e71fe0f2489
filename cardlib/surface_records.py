"""The card-surface AP's records (券面事項確認AP, RC §5.2, §5.3).

- EF 0001 age record ``FF 10 82 02 1E { DF11 YYYYMMDD, DF12 card key, DF13 signature
  over DF11-TLV ‖ DF12-TLV }``.
- EF 0002 card face ``FF 20 82 hh ll { DF21 nine u16 offsets from byte 0 of the file,
  DF22 birth, DF23 sex, DF24 card key, DF25 name PNG, DF26 address PNG, DF27 photo JP2,
  DF28 signature, DF29 expiry, DF2A security-code PNG }``; DF28 is PKCS#1 v1.5 over the
  three-digest payload (``face_signed_payload``); DF29 and DF2A are not covered.
- EF 0003 basic data ``FF 30 { DF31 4, DF32 key ID, DF33 1, DF34 5 digits, DF35 key ID +
  256 bytes }`` (not signed).
- EF 0005 rendered number ``FF 40 { DF41 PNG, DF42 card key, DF43 signature over
  DF41-TLV ‖ DF42-TLV }``.

Signatures are checked over the bytes exactly as the file holds them (decoders keep
them), so a card writing ``81 xx`` where we write ``82 00 xx`` still verifies.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .card_tlv import card_tlv, children_in_order, fixed, object_and_filler
from .cv_certificate import KeyId, decode_card_rsa_key, encode_card_rsa_key
from .digestinfo import rsa_sha256_signature_verifies
from .errors import CardDataError
from .records import SEX_CODES, checked_offset_table, parse_yyyymmdd, with_offset_table

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JP2_MAGIC = b"jP  "  # bytes 4..7 of a JP2 container
FACE_DIGEST_INFO_PREFIX = bytes.fromhex("3071300D060960864801650304020105000460")
SIGNATURE_LENGTH = 256
FACE_FIELDS = ((0xDF21, "offsets DF21"), (0xDF22, "birth date DF22"), (0xDF23, "sex DF23"),
               (0xDF24, "card key DF24"), (0xDF25, "name image DF25"),
               (0xDF26, "address image DF26"), (0xDF27, "photo DF27"),
               (0xDF28, "signature DF28"), (0xDF29, "expiry DF29"),
               (0xDF2A, "security-code image DF2A"))

encode_card_key = encode_card_rsa_key


def decode_card_key(raw: bytes) -> rsa.RSAPublicKey:
    return decode_card_rsa_key(raw, "card key")


def _sign_checked(sign: Callable[[bytes], bytes], data: bytes, what: str) -> bytes:
    signature = bytes(sign(data))
    if len(signature) != SIGNATURE_LENGTH:
        raise ValueError(f"{what}: signature must be {SIGNATURE_LENGTH} bytes")
    return signature


def _image(value: bytes, field_name: str, jp2: bool = False) -> bytes:
    ok = value[4:8] == JP2_MAGIC if jp2 else value[:8] == PNG_MAGIC
    if not ok:
        raise CardDataError(f"{field_name}: not a {'JP2' if jp2 else 'PNG'} image")
    return value


def _card_key(value: bytes, field_name: str) -> bytes:
    decode_card_rsa_key(value, field_name)
    return value


def _signed_key_record_parts(raw: bytes, record_tag: int, first_tag: int,
                             what: str) -> tuple[bytes, bytes, bytes, bytes]:
    """(datum, card key, signature, signed bytes) of a record ``record_tag`` holding
    ``first_tag`` (the datum), ``first_tag + 1`` (the card key) and ``first_tag + 2``
    (the signature over the two TLVs before it), in that order; values unchecked."""
    outer, _ = object_and_filler(raw, record_tag, what)
    tags = (first_tag, first_tag + 1, first_tag + 2)
    found = children_in_order(outer.value, tuple((tag, f"{tag:X}") for tag in tags), what)
    datum, key, signature = (item.value for item, _ in found)
    return datum, key, signature, outer.value[:found[2][1]]


# ---- EF 0001: the age record ----------------------------------------------------------------

@dataclass(frozen=True)
class AgeRecord:
    birth_date: dt.date
    card_key: bytes  # the 265-byte card key form
    signature: bytes
    signed: bytes = field(default=b"", compare=False, repr=False)  # as read, if decoded

    def signed_part(self) -> bytes:
        """DF11-TLV ‖ DF12-TLV."""
        return self.signed or (card_tlv(0xDF11, self.birth_date.strftime("%Y%m%d").encode())
                               + card_tlv(0xDF12, self.card_key))

    def verifies_under(self, key: rsa.RSAPublicKey) -> bool:
        return rsa_sha256_signature_verifies(key, self.signature, self.signed_part())

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return decode_card_key(self.card_key)


def encode_age_record(birth_date: dt.date, card_key: bytes, sign: Callable[[bytes], bytes]) -> bytes:
    unsigned = AgeRecord(birth_date, _card_key(card_key, "age record: DF12"), b"")
    signed = unsigned.signed_part()
    return card_tlv(0xFF10, signed + card_tlv(0xDF13, _sign_checked(sign, signed, "DF13")))


def decode_age_record(raw: bytes) -> AgeRecord:
    what = "age record (EF 0001)"
    birth, key, signature, signed = _signed_key_record_parts(raw, 0xFF10, 0xDF11, what)
    return AgeRecord(parse_yyyymmdd(birth, f"{what}: birth date DF11"),
                     _card_key(key, f"{what}: card key DF12"),
                     fixed(signature, SIGNATURE_LENGTH, f"{what}: DF13"), signed=signed)


# ---- EF 0002: the card face -----------------------------------------------------------------

@dataclass(frozen=True)
class CardFace:
    birth_date: dt.date
    sex: str
    card_key: bytes
    name_png: bytes
    address_png: bytes
    photo_jp2: bytes
    signature: bytes
    expiry: dt.date
    code_png: bytes
    objects: tuple[bytes, ...] = field(default=(), compare=False, repr=False)  # DF22.., as read

    def tlvs(self) -> tuple[bytes, ...]:
        """The nine objects DF22..DF2A as the file holds them."""
        if self.objects:
            return self.objects
        values = (self.birth_date.strftime("%Y%m%d").encode(), self.sex.encode("ascii"),
                  self.card_key, self.name_png, self.address_png, self.photo_jp2,
                  self.signature, self.expiry.strftime("%Y%m%d").encode(), self.code_png)
        return tuple(card_tlv(tag, value) for (tag, _), value in zip(FACE_FIELDS[1:], values,
                                                                       strict=True))

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return decode_card_key(self.card_key)


def face_signed_payload(face: CardFace) -> bytes:
    """``30 71 … 04 60`` ‖ H1 ‖ H2 ‖ H3 (RC §5.2), over the objects as the file holds them."""
    o = face.tlvs()
    return (FACE_DIGEST_INFO_PREFIX + hashlib.sha256(o[0] + o[1] + o[2]).digest()
            + hashlib.sha256(o[3] + o[4]).digest() + hashlib.sha256(o[5]).digest())


face_payload = face_signed_payload


def verify_face_signature(face: CardFace, key: rsa.RSAPublicKey) -> bool:
    """DF28: PKCS#1 v1.5 padding checked by ``cryptography``, the recovered payload
    compared with ours in constant time."""
    try:
        recovered = key.recover_data_from_signature(face.signature, padding.PKCS1v15(), None)
    except (InvalidSignature, ValueError):
        return False
    return hmac.compare_digest(recovered, face_signed_payload(face))


def sign_face(face: CardFace, sign_padded: Callable[[bytes], bytes]) -> CardFace:
    """``face`` with DF28 = ``sign_padded(payload)`` (PKCS#1 v1.5 over the payload as is)."""
    unsigned = replace(face, signature=bytes(SIGNATURE_LENGTH), objects=())
    signature = _sign_checked(sign_padded, face_signed_payload(unsigned), "DF28")
    return replace(unsigned, signature=signature)


def encode_face(face: CardFace) -> bytes:
    _check_face_values(face, ValueError)
    return with_offset_table(0xFF20, 0xDF21, list(face.tlvs()))


def _check_face_values(face: CardFace, error: type[Exception]) -> None:
    what = "card face (EF 0002)"
    if face.sex not in SEX_CODES:
        raise error(f"{what}: sex DF23 has unknown code {face.sex!r}")
    if len(face.signature) != SIGNATURE_LENGTH:
        raise error(f"{what}: signature DF28 must be {SIGNATURE_LENGTH} bytes")
    try:
        _card_key(face.card_key, f"{what}: card key DF24")
        _image(face.name_png, f"{what}: name image DF25")
        _image(face.address_png, f"{what}: address image DF26")
        _image(face.photo_jp2, f"{what}: photo DF27", jp2=True)
        _image(face.code_png, f"{what}: security-code image DF2A")
    except CardDataError as exc:
        if error is CardDataError:
            raise
        raise error(str(exc)) from None


def decode_face(raw: bytes) -> CardFace:
    """EF 0002, trimmed or physical; DF21's nine offsets checked against the file."""
    what = "card face (EF 0002)"
    items = checked_offset_table(raw, 0xFF20, FACE_FIELDS, what)
    values = [value for value, _ in items]
    objects = tuple(encoded for _, encoded in items)
    face = CardFace(
        birth_date=parse_yyyymmdd(fixed(values[0], 8, f"{what}: DF22"), f"{what}: birth date DF22"),
        sex=values[1].decode("ascii", "replace"), card_key=values[2], name_png=values[3],
        address_png=values[4], photo_jp2=values[5], signature=values[6],
        expiry=parse_yyyymmdd(fixed(values[7], 8, f"{what}: DF29"), f"{what}: expiry DF29"),
        code_png=values[8], objects=objects)
    _check_face_values(face, CardDataError)
    return face


# ---- EF 0003: basic data ----------------------------------------------------------------------

@dataclass(frozen=True)
class SurfaceBasicInfo:
    spec: bytes  # DF31, 4 bytes (06 03 0E 01 on the cards seen)
    key_id: KeyId  # DF32 (raw bytes accepted)
    version: bytes  # DF33, 1 byte
    municipality: str  # DF34, 5 ASCII digits
    opaque: bytes  # DF35: a 16-byte key ID + 256 bytes

    def __post_init__(self) -> None:
        if isinstance(self.key_id, bytes | bytearray):
            object.__setattr__(self, "key_id", KeyId(bytes(self.key_id)))

    @property
    def opaque_key_id(self) -> KeyId:
        return KeyId(self.opaque[:16])


def encode_basic_info(info: SurfaceBasicInfo) -> bytes:
    if len(info.spec) != 4 or len(info.version) != 1 or len(info.opaque) != 272:
        raise ValueError("surface basic info: DF31 4 bytes, DF33 1 byte, DF35 272 bytes")
    if len(info.municipality) != 5 or not info.municipality.isdigit() \
            or not info.municipality.isascii():
        raise ValueError("surface basic info: DF34 must be 5 digits")
    info.opaque_key_id  # noqa: B018 - validates the key ID in front of DF35
    return card_tlv(0xFF30, card_tlv(0xDF31, info.spec) + card_tlv(0xDF32, info.key_id.raw)
                    + card_tlv(0xDF33, info.version)
                    + card_tlv(0xDF34, info.municipality.encode("ascii"))
                    + card_tlv(0xDF35, info.opaque))


def decode_basic_info(raw: bytes) -> SurfaceBasicInfo:
    what = "surface basic info (EF 0003)"
    outer, _ = object_and_filler(raw, 0xFF30, what)
    found = children_in_order(outer.value, ((0xDF31, "DF31"), (0xDF32, "DF32"), (0xDF33, "DF33"),
                                            (0xDF34, "DF34"), (0xDF35, "DF35")), what)
    spec, key_id, version, municipality, opaque = (item.value for item, _ in found)
    text = fixed(municipality, 5, f"{what}: DF34").decode("ascii", "replace")
    if not (text.isascii() and text.isdigit()):
        raise CardDataError(f"{what}: DF34 is not 5 ASCII digits")
    try:
        kid, _ = KeyId(fixed(key_id, 16, f"{what}: DF32")), KeyId(opaque[:16])
    except CardDataError as exc:
        raise CardDataError(f"{what}: {exc}") from None
    return SurfaceBasicInfo(fixed(spec, 4, f"{what}: DF31"), kid,
                            fixed(version, 1, f"{what}: DF33"), text,
                            fixed(opaque, 272, f"{what}: DF35"))


# ---- EF 0005: the rendered individual number ----------------------------------------------

@dataclass(frozen=True)
class RenderedNumber:
    png: bytes
    card_key: bytes
    signature: bytes
    signed: bytes = field(default=b"", compare=False, repr=False)

    def signed_part(self) -> bytes:
        """DF41-TLV ‖ DF42-TLV."""
        return self.signed or card_tlv(0xDF41, self.png) + card_tlv(0xDF42, self.card_key)

    def verifies_under(self, key: rsa.RSAPublicKey) -> bool:
        return rsa_sha256_signature_verifies(key, self.signature, self.signed_part())


def encode_rendered_number(png: bytes, card_key: bytes, sign: Callable[[bytes], bytes]) -> bytes:
    try:
        unsigned = RenderedNumber(_image(png, "DF41"), _card_key(card_key, "DF42"), b"")
    except CardDataError as exc:
        raise ValueError(f"rendered number: {exc}") from None
    signed = unsigned.signed_part()
    return card_tlv(0xFF40, signed + card_tlv(0xDF43, _sign_checked(sign, signed, "DF43")))


def decode_rendered_number(raw: bytes) -> RenderedNumber:
    what = "rendered number (EF 0005)"
    png, key, signature, signed = _signed_key_record_parts(raw, 0xFF40, 0xDF41, what)
    return RenderedNumber(_image(png, f"{what}: image DF41"), _card_key(key, f"{what}: DF42"),
                          fixed(signature, SIGNATURE_LENGTH, f"{what}: DF43"), signed=signed)
