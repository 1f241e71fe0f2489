"""An independent reader of the individual-number card, written from
../shared/reference/real-card.md (RC) alone.

It imports nothing of this project (no cardlib, hsm or tools): only pyscard for PC/SC and
`cryptography` for SHA-256 and RSA. It reads the 4 information with the PIN (RC §4.3),
verifies the integrity record (RC §4.4: DF31 over the physical EF 0001, DF32 over the
FF20 value without DF21, DF33 under the key certified by EF 0004, EF 0004 under an anchor
given as a modulus, RC §6) and runs the presence proof (RC §4.6: EF 0007 DF52, GET
CHALLENGE, 80 2A 00 00, verify). If it agrees with the project's host side, the two
were not written from each other's mistakes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from smartcard import scard

CARD_INFO_AID = bytes.fromhex("D3921000310001010408")  # RC §4
SHA256_DIGEST_INFO_PREFIX = bytes.fromhex("3031300D060960864801650304020105000420")
CHUNK = 256  # Le 00


class CardError(Exception):
    """The card answered something RC says it would not, or a check failed."""


# ---- PC/SC ------------------------------------------------------------------------------

class RawCard:
    """One PC/SC connection; ``transmit`` sends raw APDU bytes, returns (data, sw)."""

    def __init__(self, reader: str) -> None:
        result, self._context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        self._check(result, "SCardEstablishContext")
        self.reader = reader
        result, self._handle, self._protocol = scard.SCardConnect(
            self._context, reader, scard.SCARD_SHARE_EXCLUSIVE,
            scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1)
        self._check(result, "SCardConnect")
        self.sent: list[bytes] = []

    @staticmethod
    def _check(result: int, what: str) -> None:
        if result != scard.SCARD_S_SUCCESS:
            raise CardError(f"{what}: {scard.SCardGetErrorMessage(result)}")

    def atr(self) -> bytes:
        result, _reader, _state, _protocol, atr = scard.SCardStatus(self._handle)
        self._check(result, "SCardStatus")
        return bytes(atr)

    def transmit(self, apdu: bytes | str) -> tuple[bytes, int]:
        raw = bytes.fromhex(apdu.replace(" ", "")) if isinstance(apdu, str) else apdu
        self.sent.append(raw)
        pci = scard.SCARD_PCI_T1 if self._protocol == scard.SCARD_PROTOCOL_T1 else scard.SCARD_PCI_T0
        result, answer = scard.SCardTransmit(self._handle, pci, list(raw))
        self._check(result, "SCardTransmit")
        if len(answer) < 2:
            raise CardError(f"answer without a status word: {bytes(answer).hex()}")
        return bytes(answer[:-2]), (answer[-2] << 8) | answer[-1]

    def reconnect(self, *, unpower: bool) -> None:
        """A warm reset (SCARD_RESET_CARD) or a power cycle (SCARD_UNPOWER_CARD)."""
        disposition = scard.SCARD_UNPOWER_CARD if unpower else scard.SCARD_RESET_CARD
        result, self._protocol = scard.SCardReconnect(
            self._handle, scard.SCARD_SHARE_EXCLUSIVE,
            scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1, disposition)
        self._check(result, "SCardReconnect")

    def close(self) -> None:
        scard.SCardDisconnect(self._handle, scard.SCARD_UNPOWER_CARD)
        scard.SCardReleaseContext(self._context)

    def __enter__(self) -> RawCard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def expect(card: RawCard, apdu: bytes | str, sw: int = 0x9000) -> bytes:
    data, got = card.transmit(apdu)
    if got != sw:
        shown = apdu if isinstance(apdu, str) else apdu.hex(" ")
        raise CardError(f"{shown} answered {got:04X}, expected {sw:04X}")
    return data


def select_aid(card: RawCard, aid: bytes) -> None:
    expect(card, bytes([0x00, 0xA4, 0x04, 0x0C, len(aid)]) + aid)


def select_ef(card: RawCard, fid: int) -> None:
    expect(card, bytes([0x00, 0xA4, 0x02, 0x0C, 0x02]) + fid.to_bytes(2, "big"))


def verify(card: RawCard, key_fid: int, secret: str) -> None:
    """SELECT the key EF, then VERIFY 00 20 00 80 (RC §2.1)."""
    select_ef(card, key_fid)
    value = secret.encode("ascii")
    expect(card, bytes([0x00, 0x20, 0x00, 0x80, len(value)]) + value)


def read_physical(card: RawCard, fid: int) -> bytes:
    """The whole EF, filler included: 256-byte chunks until a short one or 6B00 (RC §2.2)."""
    select_ef(card, fid)
    content = b""
    while True:
        offset = len(content)
        data, sw = card.transmit(bytes([0x00, 0xB0, offset >> 8, offset & 0xFF, 0x00]))
        if sw in (0x6B00, 0x6282) and offset:
            return content
        if sw != 0x9000:
            raise CardError(f"READ BINARY of {fid:04X} at {offset} answered {sw:04X}")
        content += data
        if len(data) < CHUNK:
            return content


def der_object(content: bytes) -> bytes:
    """A DER certificate without the filler after it (JPKI EFs, RC §7.1: the size is in
    the header ``30 82 hh ll``)."""
    if content[:2] != b"\x30\x82":
        raise CardError(f"not a DER SEQUENCE with a 2-byte length: {content[:4].hex()}")
    return content[:4 + int.from_bytes(content[2:4], "big")]


# ---- BER-TLV (two-byte private tags, lengths short / 81 / 82) ---------------------------

@dataclass(frozen=True)
class Tlv:
    tag: int
    start: int  # offset of the tag in the buffer
    value_start: int
    end: int  # one past the value

    def raw(self, buffer: bytes) -> bytes:
        return buffer[self.start:self.end]

    def value(self, buffer: bytes) -> bytes:
        return buffer[self.value_start:self.end]


def read_tlv(buffer: bytes, at: int) -> Tlv:
    tag = buffer[at]
    position = at + 1
    if tag & 0x1F == 0x1F:  # FFxx, DFxx, 7F21, 5Fxx: two-byte tags on this card
        tag = (tag << 8) | buffer[position]
        position += 1
    first = buffer[position]
    position += 1
    if first < 0x80:
        length = first
    elif first in (0x81, 0x82):
        size = first - 0x80
        length = int.from_bytes(buffer[position:position + size], "big")
        position += size
    else:
        raise CardError(f"length byte {first:02X} at {position - 1}")
    if position + length > len(buffer):
        raise CardError(f"TLV {tag:X} at {at} runs past the end of its buffer")
    return Tlv(tag, at, position, position + length)


def children(buffer: bytes, start: int, end: int) -> list[Tlv]:
    """The objects between ``start`` and ``end``; stops at filler (00 or FF first byte)."""
    found = []
    while start < end and buffer[start] not in (0x00, 0xFF):
        item = read_tlv(buffer, start)
        found.append(item)
        start = item.end
    return found


def only(objects: list[Tlv], tag: int) -> Tlv:
    matches = [o for o in objects if o.tag == tag]
    if len(matches) != 1:
        raise CardError(f"expected one {tag:X} object, found {len(matches)}")
    return matches[0]


def inner(buffer: bytes, outer_tag: int) -> list[Tlv]:
    outer = read_tlv(buffer, 0)
    if outer.tag != outer_tag:
        raise CardError(f"expected outer tag {outer_tag:X}, found {outer.tag:X}")
    return children(buffer, outer.value_start, outer.end)


# ---- RSA keys and CV certificates (RC §2.2, §6) ----------------------------------------

def rsa_key(encoded: bytes) -> rsa.RSAPublicKey:
    """``90 03 01 00 01 91 82 01 00 <256-byte modulus>``: 265 bytes."""
    if len(encoded) != 265 or encoded[:9] != bytes.fromhex("900301000191820100"):
        raise CardError(f"not the card's 265-byte RSA key form: {encoded[:9].hex()}")
    return rsa.RSAPublicNumbers(65537, int.from_bytes(encoded[9:], "big")).public_key()


def key_from_modulus(modulus: bytes) -> rsa.RSAPublicKey:
    return rsa.RSAPublicNumbers(65537, int.from_bytes(modulus, "big")).public_key()


def check_signature(key: rsa.RSAPublicKey, signature: bytes, message: bytes, what: str) -> None:
    try:
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise CardError(f"{what}: signature does not verify") from None


@dataclass(frozen=True)
class CvCertificate:
    issuer_id: bytes
    holder_id: bytes
    key: rsa.RSAPublicKey
    body: bytes
    signature: bytes


def parse_cv_certificate(content: bytes) -> CvCertificate:
    """``7F21 { 5F4E <297-byte body>, 5F37 <256> }`` or, from GET DATA, the two inner
    objects without the template (RC §3, §6)."""
    first = read_tlv(content, 0)
    objects = children(content, first.value_start, first.end) if first.tag == 0x7F21 \
        else children(content, 0, len(content))
    body = only(objects, 0x5F4E).value(content)
    signature = only(objects, 0x5F37).value(content)
    if len(body) != 297 or len(signature) != 256:
        raise CardError(f"CV certificate body {len(body)} / signature {len(signature)} bytes")
    return CvCertificate(body[:16], body[16:32], rsa_key(body[32:]), body, signature)


def check_cv_certificate(cert: CvCertificate, issuer_key: rsa.RSAPublicKey,
                         issuer_id: bytes | None = None) -> None:
    if issuer_id is not None and cert.issuer_id != issuer_id:
        raise CardError(f"CV certificate issued by {cert.issuer_id!r}, not {issuer_id!r}")
    check_signature(issuer_key, cert.signature, cert.body, "CV certificate")


# ---- the card-info AP: 4 information, integrity, presence --------------------------------

@dataclass(frozen=True)
class FourInfo:
    name: str
    address: str
    birth_date: dt.date
    sex: str


def parse_four_info(content: bytes) -> tuple[FourInfo, int, int]:
    """EF 0002 (RC §4.3); also returns the file offsets where DF22 starts and DF25 ends."""
    objects = inner(content, 0xFF20)
    table = only(objects, 0xDF21).value(content)
    if len(table) != 8:
        raise CardError(f"DF21 holds {len(table)} bytes, not four offsets")
    offsets = [int.from_bytes(table[i:i + 2], "big") for i in range(0, 8, 2)]
    fields = {}
    for tag, offset in zip((0xDF22, 0xDF23, 0xDF24, 0xDF25), offsets, strict=True):
        item = read_tlv(content, offset)  # offsets count from byte 0 of the file
        if item.tag != tag or item != only(objects, tag):
            raise CardError(f"DF21 offset {offset} does not point at {tag:X}")
        fields[tag] = item
    born = fields[0xDF24].value(content).decode("ascii")
    info = FourInfo(fields[0xDF22].value(content).decode("utf-8"),
                    fields[0xDF23].value(content).decode("utf-8"),
                    dt.date(int(born[:4]), int(born[4:6]), int(born[6:])),
                    fields[0xDF25].value(content).decode("ascii"))
    return info, offsets[0], fields[0xDF25].end


def read_four_info(card: RawCard, pin: str) -> FourInfo:
    select_aid(card, CARD_INFO_AID)
    verify(card, 0x0011, pin)
    return parse_four_info(read_physical(card, 0x0002))[0]


def verify_ap_certificate(card: RawCard, anchor_modulus: bytes,
                          anchor_id: bytes | None = None) -> CvCertificate:
    """EF 0004 (free) under the anchor; returns the certificate (its key signs the records)."""
    select_aid(card, CARD_INFO_AID)
    certificate = parse_cv_certificate(read_physical(card, 0x0004))
    check_cv_certificate(certificate, key_from_modulus(anchor_modulus), anchor_id)
    return certificate


def verify_integrity(card: RawCard, pin: str, anchor_modulus: bytes,
                     anchor_id: bytes | None = None) -> FourInfo:
    """RC §4.4 with the PIN: returns the 4 information only once all three fields hold."""
    certificate = verify_ap_certificate(card, anchor_modulus, anchor_id)
    verify(card, 0x0011, pin)
    number_file = read_physical(card, 0x0001)
    attributes = read_physical(card, 0x0002)
    record = read_physical(card, 0x0003)
    objects = inner(record, 0xFF30)
    df31, df32, df33 = (only(objects, tag) for tag in (0xDF31, 0xDF32, 0xDF33))
    info, start, end = parse_four_info(attributes)
    if df31.value(record) != hashlib.sha256(number_file).digest():
        raise CardError("DF31 is not SHA-256 of the physical EF 0001")
    if df32.value(record) != hashlib.sha256(attributes[start:end]).digest():
        raise CardError("DF32 is not SHA-256 of DF22..DF25")
    check_signature(certificate.key, df33.value(record), df31.raw(record) + df32.raw(record),
                    "DF33")
    return info


@dataclass(frozen=True)
class PresenceProof:
    challenge: bytes
    card_challenge: bytes
    signature: bytes


def prove_presence(card: RawCard, secret_key_fid: int, secret: str, anchor_modulus: bytes,
                   anchor_id: bytes | None = None, challenge: bytes | None = None) -> PresenceProof:
    """RC §4.6: EF 0007 under the EF 0004 key, then a fresh challenge signed by the
    DF51 key with ``80 2A 00 00`` (no credential). The card's GET CHALLENGE is asked as
    the protocol does; the signed challenge is the verifier's own unless one is given."""
    certificate = verify_ap_certificate(card, anchor_modulus, anchor_id)
    verify(card, secret_key_fid, secret)
    signed_key = read_physical(card, 0x0007)
    objects = inner(signed_key, 0xFF50)
    df51, df52 = only(objects, 0xDF51), only(objects, 0xDF52)
    check_signature(certificate.key, df52.value(signed_key), df51.raw(signed_key), "DF52")
    card_challenge = expect(card, "00 84 00 00 10")
    if len(card_challenge) != 16:
        raise CardError(f"GET CHALLENGE gave {len(card_challenge)} bytes, not 16")
    message = challenge if challenge is not None else secrets.token_bytes(16)
    digest_info = SHA256_DIGEST_INFO_PREFIX + hashlib.sha256(message).digest()
    signature = expect(card, bytes([0x80, 0x2A, 0x00, 0x00, len(digest_info)]) + digest_info
                       + b"\x00")
    check_signature(rsa_key(df51.value(signed_key)), signature, message, "presence signature")
    return PresenceProof(message, card_challenge, signature)
