"""PIV card application session (NIST SP 800-73-4 subset): what a station needs of an
operator card, spoken the same way to our emulated card and to real PIV cards.

Long commands go out with ISO command chaining (YubiKeys take no extended APDUs).
The management key never enters this module: mutual authentication takes a
``BlockCipher`` whose key lives elsewhere (in the token, for the station).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from ..apdu import CommandApdu
from ..constants import (
    AES_BLOCK,
    PIV_CERT_OF_KEY,
    PIV_GET_DATA_P1P2,
    PIV_VERIFY_RESET,
    RSA_2048_BYTES,
    Aid,
    PivAlgorithm,
    PivIns,
    PivKeyRef,
    PivObject,
)
from ..digestinfo import digest_info
from ..errors import CardDataError, CardError, FileNotFoundOnCardError, SecureMessagingError
from ..piv_objects import (
    TAG_KEY_ALGORITHM_TEMPLATE,
    TAG_RESPONSE,
    TAG_WITNESS,
    Chuid,
    certificate_object,
    data_object,
    data_object_content,
    dynamic_auth,
    pad_pin,
    parse_certificate_object,
    parse_dynamic_auth,
    tag_list,
)
from ..public_key import PublicKey, parse_public_key
from ..tlv import Tlv
from .base import ApplicationSession, PinStatus, pin_status_of

log = logging.getLogger(__name__)


class BlockCipher(Protocol):
    """One AES block in, one out, under the card's management key."""

    def encrypt_block(self, block: bytes) -> bytes: ...
    def decrypt_block(self, block: bytes) -> bytes: ...


def pkcs1_v15_block(message: bytes) -> bytes:
    """EMSA-PKCS1-v1_5 encoding of SHA-256(message) for a 2048-bit key: what a PIV card
    raises to the private exponent (the card does raw RSA; the host pads)."""
    info = digest_info(hashes.SHA256(), hashlib.sha256(message).digest())
    padding_length = RSA_2048_BYTES - len(info) - 3
    return b"\x00\x01" + b"\xff" * padding_length + b"\x00" + info


@dataclass(frozen=True)
class PivCardInfo:
    guid: str
    expiry: str | None
    has_auth_certificate: bool

    def as_json(self) -> dict[str, object]:
        return dict(vars(self))


class PivSession(ApplicationSession):
    AID = Aid.PIV

    # ---- data objects -----------------------------------------------------------------

    def get_object(self, tag: int) -> bytes | None:
        """The content of data object ``tag`` (inside its 53 template); None if absent."""
        apdu = CommandApdu(0x00, PivIns.GET_DATA, PIV_GET_DATA_P1P2 >> 8, PIV_GET_DATA_P1P2 & 0xFF,
                           tag_list(tag), ne=256)
        try:
            data = self.channel.send(apdu)
        except FileNotFoundOnCardError:
            return None
        return data_object_content(data, f"PIV object {tag:X}")

    def put_object(self, tag: int, content: bytes) -> None:
        """PUT DATA (after management-key authentication)."""
        apdu = CommandApdu(0x00, PivIns.PUT_DATA, PIV_GET_DATA_P1P2 >> 8, PIV_GET_DATA_P1P2 & 0xFF,
                           tag_list(tag) + data_object(content))
        self.channel.send(apdu, chained=True)

    def read_chuid(self) -> Chuid:
        content = self.get_object(PivObject.CHUID)
        if content is None:
            raise CardDataError("PIV card has no CHUID (5FC102)")
        return Chuid.decode(content)

    def read_certificate(self, key: PivKeyRef) -> x509.Certificate | None:
        content = self.get_object(PIV_CERT_OF_KEY[key])
        return parse_certificate_object(content) if content is not None else None

    def put_certificate(self, key: PivKeyRef, cert: x509.Certificate) -> None:
        self.put_object(PIV_CERT_OF_KEY[key], certificate_object(cert))

    def info(self) -> PivCardInfo:
        chuid = self.read_chuid()
        auth = self.get_object(PivObject.AUTH_CERT)
        return PivCardInfo(chuid.guid_hex, chuid.expiry, auth is not None)

    # ---- PIN and PUK (PIV references, not "selected EF") -----------------------------------

    def pin_status(self, pin_fid: int | None = None) -> PinStatus:
        """Empty VERIFY on the PIV PIN: the retry counter, spending no try."""
        apdu = CommandApdu(0x00, PivIns.VERIFY, 0x00, PivKeyRef.PIN)
        _, sw = self.channel.transceive(apdu)
        return pin_status_of(sw)

    def verify_pin(self, pin: str, pin_fid: int | None = None) -> None:
        apdu = CommandApdu(0x00, PivIns.VERIFY, 0x00, PivKeyRef.PIN, pad_pin(pin))
        self.channel.send(apdu, sensitive=True)

    def forget_pin(self) -> None:
        """VERIFY ``00 20 FF 80`` (no data; SP 800-73-4 3.2.1): the card resets the PIN's
        security status, spending no try."""
        self.channel.send(CommandApdu(0x00, PivIns.VERIFY, PIV_VERIFY_RESET, PivKeyRef.PIN))

    @contextmanager
    def pin_forgotten(self) -> Iterator[None]:
        """The PIN's security status is reset when the block ends, also when it raises.
        Best effort: a card that cannot be reached or refuses is logged, never masks the
        block's own error; the power-off at the end of the connection clears it anyway."""
        try:
            yield
        finally:
            try:
                self.forget_pin()
            except CardError as exc:
                log.warning("PIV: the card did not forget the PIN (%s); it is powered off "
                            "when the connection closes", exc)

    def change_reference(self, reference: PivKeyRef, old: str, new: str) -> None:
        """CHANGE REFERENCE DATA for the PIN (80) or the PUK (81): old ‖ new, padded."""
        apdu = CommandApdu(0x00, PivIns.CHANGE_REFERENCE_DATA, 0x00, reference,
                           pad_pin(old) + pad_pin(new))
        self.channel.send(apdu, sensitive=True)

    def unblock_pin(self, puk: str, new_pin: str) -> None:
        """RESET RETRY COUNTER: the PUK sets a new PIN and its full retry count."""
        apdu = CommandApdu(0x00, PivIns.RESET_RETRY_COUNTER, 0x00, PivKeyRef.PIN,
                           pad_pin(puk) + pad_pin(new_pin))
        self.channel.send(apdu, sensitive=True)

    # ---- keys ---------------------------------------------------------------------------

    def general_authenticate(self, key: PivKeyRef, algorithm: int, challenge: bytes) -> bytes:
        """``7C {82 00, 81 challenge}`` → the card's ``82`` response (a signature)."""
        apdu = CommandApdu(0x00, PivIns.GENERAL_AUTHENTICATE, algorithm, key,
                           dynamic_auth(response=b"", challenge=challenge), ne=256)
        items = parse_dynamic_auth(self.channel.send(apdu, chained=True))
        response = items.get(TAG_RESPONSE)
        if not response:
            raise CardDataError("GENERAL AUTHENTICATE: no response (82) in the card's answer")
        return response

    def sign_sha256(self, key: PivKeyRef, algorithm: int, message: bytes) -> bytes:
        """A sha256WithRSAEncryption or ecdsa-with-SHA256 (DER) signature by ``key``."""
        if algorithm == PivAlgorithm.RSA_2048:
            signature = self.general_authenticate(key, algorithm, pkcs1_v15_block(message))
            if len(signature) != RSA_2048_BYTES:
                raise CardDataError(f"RSA-2048 signature of {len(signature)} bytes")
            return signature
        if algorithm == PivAlgorithm.ECC_P256:
            return self.general_authenticate(key, algorithm, hashlib.sha256(message).digest())
        raise ValueError(f"no SHA-256 signature with PIV algorithm {algorithm:02X}")

    def authenticate_management(self, cipher: BlockCipher,
                                algorithm: int = PivAlgorithm.AES_128) -> None:
        """Mutual authentication with the management key (9B): the card proves it holds
        the key by the witness, we prove it by decrypting it; then the card proves it
        again by encrypting our challenge, checked in constant time."""
        first = CommandApdu(0x00, PivIns.GENERAL_AUTHENTICATE, algorithm, PivKeyRef.MANAGEMENT,
                            dynamic_auth(witness=b""), ne=256)
        witness = parse_dynamic_auth(self.channel.send(first)).get(TAG_WITNESS)
        if witness is None or len(witness) != AES_BLOCK:
            raise CardDataError("management key: the card sent no 16-byte witness (80)")
        challenge = secrets.token_bytes(AES_BLOCK)
        second = CommandApdu(0x00, PivIns.GENERAL_AUTHENTICATE, algorithm, PivKeyRef.MANAGEMENT,
                             dynamic_auth(witness=cipher.decrypt_block(witness),
                                          challenge=challenge), ne=256)
        answer = parse_dynamic_auth(self.channel.send(second, sensitive=True)).get(TAG_RESPONSE)
        if answer is None or not hmac.compare_digest(answer, cipher.encrypt_block(challenge)):
            raise SecureMessagingError("management key: the card's response to our challenge "
                                       "is wrong (not the key we hold)")

    def generate_key(self, key: PivKeyRef, algorithm: int) -> PublicKey:
        """GENERATE ASYMMETRIC KEY PAIR ``00 47 00 key`` (after management authentication)."""
        template = Tlv(TAG_KEY_ALGORITHM_TEMPLATE, Tlv(0x80, bytes((algorithm,))).encode())
        apdu = CommandApdu(0x00, PivIns.GENERATE_ASYMMETRIC_KEY_PAIR, 0x00, key,
                           template.encode(), ne=256)
        return parse_public_key(self.channel.send(apdu), algorithm)
