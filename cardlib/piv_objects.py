"""PIV data objects (NIST SP 800-73-4 part 1 and 2), encoded and parsed in one place.

Shared by the host session and the emulated operator card, so both sides agree on
the bytes; every parser raises ``CardDataError`` naming what was wrong.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from . import tlv
from .constants import PIV_PIN_LENGTH, PIV_PIN_MAX, PIV_PIN_MIN, PIV_PIX, PIV_RID, TAG_AID, PivAlgorithm
from .errors import CardDataError
from .public_key import CURVES, PublicKey
from .tlv import Tlv

TAG_DATA = 0x53  # every PIV data object travels inside a 53 template
TAG_TAG_LIST = 0x5C
TAG_DYNAMIC_AUTH = 0x7C
TAG_WITNESS, TAG_CHALLENGE, TAG_RESPONSE = 0x80, 0x81, 0x82
TAG_KEY_ALGORITHM_TEMPLATE = 0xAC
TAG_ALGORITHM = 0x80
TAG_APT = 0x61  # Application Property Template (SELECT response)
TAG_CERTIFICATE, TAG_CERT_INFO, TAG_LRC = 0x70, 0x71, 0xFE
CHUID_FASC_N, CHUID_GUID, CHUID_EXPIRY, CHUID_SIGNATURE = 0x30, 0x34, 0x35, 0x3E
FASC_N_LENGTH, GUID_LENGTH = 25, 16
PIN_PAD = 0xFF


# ---- PINs -------------------------------------------------------------------------------

def pad_pin(pin: str) -> bytes:
    """A PIV PIN or PUK as it travels: ASCII digits, FF-padded to 8 bytes."""
    if not (PIV_PIN_MIN <= len(pin) <= PIV_PIN_MAX and pin.isascii() and pin.isdigit()):
        raise ValueError(f"a PIV PIN/PUK is {PIV_PIN_MIN}-{PIV_PIN_MAX} digits")
    return pin.encode("ascii").ljust(PIV_PIN_LENGTH, bytes((PIN_PAD,)))


def unpad_pin(block: bytes) -> bytes | None:
    """The PIN inside an 8-byte FF-padded block; None if the block is malformed (the
    padding may only trail, the PIN may not contain FF)."""
    if len(block) != PIV_PIN_LENGTH:
        return None
    pin = block.rstrip(bytes((PIN_PAD,)))
    if PIN_PAD in pin:
        return None
    return pin


# ---- data objects -----------------------------------------------------------------------

def tag_list(tag: int) -> bytes:
    """The ``5C`` data field naming a data object for GET DATA / PUT DATA."""
    return Tlv(TAG_TAG_LIST, tlv.encode_tag(tag)).encode()


def parse_tag_list(data: bytes) -> tuple[int, bytes]:
    """(object tag, rest) of a GET/PUT DATA field ``5C <tag> [53 ...]``."""
    try:
        first, end = tlv.parse_one(data)
    except (CardDataError, ValueError) as exc:
        raise CardDataError(f"PIV tag list: malformed ({exc})") from None
    if first.tag != TAG_TAG_LIST or not 1 <= len(first.value) <= 3:
        raise CardDataError("PIV tag list: expected 5C with a 1-3 byte tag")
    return int.from_bytes(first.value, "big"), data[end:]


def data_object(content: bytes) -> bytes:
    return Tlv(TAG_DATA, content).encode()


def data_object_content(data: bytes, what: str) -> bytes:
    """The value of the ``53`` template a GET DATA returned."""
    return tlv.parse_expected(data, TAG_DATA, what, alone=True).value


@dataclass(frozen=True)
class Chuid:
    """Card Holder Unique Identifier: the GUID names the card (and its management key)."""

    guid: bytes
    fasc_n: bytes
    expiry: str | None  # YYYYMMDD

    @property
    def guid_hex(self) -> str:
        return self.guid.hex().upper()

    def encode(self) -> bytes:
        parts = [Tlv(CHUID_FASC_N, self.fasc_n), Tlv(CHUID_GUID, self.guid)]
        if self.expiry:
            parts.append(Tlv(CHUID_EXPIRY, self.expiry.encode("ascii")))
        parts += [Tlv(CHUID_SIGNATURE, b""), Tlv(TAG_LRC, b"")]
        return b"".join(p.encode() for p in parts)

    @classmethod
    def decode(cls, content: bytes) -> Chuid:
        fields = tlv.children_by_tag(content, "CHUID")
        guid = fields.get(CHUID_GUID)
        if guid is None or len(guid) != GUID_LENGTH:
            raise CardDataError("CHUID: GUID (34) missing or not 16 bytes")
        fasc_n = fields.get(CHUID_FASC_N, b"")
        if len(fasc_n) != FASC_N_LENGTH:
            raise CardDataError("CHUID: FASC-N (30) missing or not 25 bytes")
        expiry = fields.get(CHUID_EXPIRY)
        text = None
        if expiry is not None:
            try:
                text = expiry.decode("ascii")
                dt.datetime.strptime(text, "%Y%m%d")
            except ValueError:
                raise CardDataError("CHUID: expiry (35) is not YYYYMMDD") from None
        return cls(guid, fasc_n, text)


def certificate_object(cert: x509.Certificate) -> bytes:
    """The content of a certificate data object: 70 DER, 71 00 (not compressed), FE."""
    der = cert.public_bytes(serialization.Encoding.DER)
    return Tlv(TAG_CERTIFICATE, der).encode() + Tlv(TAG_CERT_INFO, b"\x00").encode() + \
        Tlv(TAG_LRC, b"").encode()


def parse_certificate_object(content: bytes) -> x509.Certificate:
    fields = tlv.children_by_tag(content, "certificate object")
    der, info = fields.get(TAG_CERTIFICATE), fields.get(TAG_CERT_INFO, b"\x00")
    if der is None:
        raise CardDataError("certificate object: no certificate (70)")
    if info not in (b"", b"\x00"):
        raise CardDataError("certificate object: compressed certificates are not supported")
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise CardDataError(f"certificate object: not an X.509 certificate ({exc})") from None


def discovery_object() -> bytes:
    """7E { 4F AID, 5F2F PIN usage policy 40 00 (PIV PIN only) }."""
    return Tlv.build(0x7E, Tlv(TAG_AID, PIV_RID + PIV_PIX), Tlv(0x5F2F, b"\x40\x00")).encode()


def application_property_template(label: str, algorithms: tuple[int, ...]) -> bytes:
    """The SELECT answer: PIX, authority (RID), label and the supported algorithms."""
    algorithm_ids = b"".join(Tlv(TAG_ALGORITHM, bytes((a,))).encode() for a in algorithms)
    return Tlv.build(
        TAG_APT,
        Tlv(TAG_AID, PIV_PIX),
        Tlv.build(0x79, Tlv(TAG_AID, PIV_RID)),
        Tlv(0x50, label.encode("ascii")),
        Tlv(TAG_KEY_ALGORITHM_TEMPLATE, algorithm_ids + Tlv(0x06, b"\x00").encode()),
    ).encode()


# ---- GENERAL AUTHENTICATE ---------------------------------------------------------------

def dynamic_auth(**items: bytes) -> bytes:
    """A ``7C`` template from witness/challenge/response values (b"" = requested)."""
    tags = {"witness": TAG_WITNESS, "challenge": TAG_CHALLENGE, "response": TAG_RESPONSE}
    order = ("witness", "challenge", "response")
    inner = [Tlv(tags[name], items[name]) for name in order if name in items]
    return Tlv.build(TAG_DYNAMIC_AUTH, *inner).encode()


def parse_dynamic_auth(data: bytes) -> dict[int, bytes]:
    """The items of a ``7C`` template by tag (80, 81, 82, ...)."""
    return tlv.parse_template(data, TAG_DYNAMIC_AUTH, "GENERAL AUTHENTICATE template",
                              alone=True)


# ---- public keys (GENERATE ASYMMETRIC KEY PAIR: cardlib.public_key) -------------------

def algorithm_of(key: PublicKey) -> int:
    """The PIV algorithm identifier of a public key (from a certificate, say)."""
    if isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048:
        return PivAlgorithm.RSA_2048
    if isinstance(key, ec.EllipticCurvePublicKey):
        for algorithm, curve in CURVES.items():
            if key.curve.name == curve.name:
                return algorithm
    raise CardDataError("key is neither RSA-2048 nor a supported EC curve")
