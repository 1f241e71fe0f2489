"""The card-info AP's proprietary secure messaging (real-card.md §4.7), host side, and
the arithmetic both sides share.

After the PIN (in the clear) the host sends SET SESSION KEY ``80 AE 00 00`` with an
RSAES-OAEP (SHA-256, MGF1-SHA-256, empty label) cryptogram of ``A0 22 80 20 <32
random bytes>`` under the key of EF 0006; the first 16 random bytes are the AES-128
session key K. Every secure command then goes out with CLA ``08``: its data (the secret
of a VERIFY, the FID of a SELECT) as ``86 L 01 <AES-128-CBC(K, IV(N), pad(data))>``,
READ BINARY as ``96 03 00 LL LL``; answers with data come back as the same ``86`` object
under the same IV. IV(N) = AES-ECB_K(00×12 ‖ N), N = 1, 2, … for every secure command.

There is no MAC: the scheme hides the secrets and the data read, not their integrity.
"""

from __future__ import annotations

import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from . import tlv
from .apdu import CommandApdu
from .channel import ApduChannel
from .constants import (
    AES_BLOCK,
    CLA_CHANNEL_MASK,
    CLA_TEXT_SM,
    SELECT_BY_DF_NAME,
    SELECT_EF_UNDER_DF,
    Ins,
)
from .errors import CardDataError, SecureMessagingError
from .scp03.crypto import aes_cbc_decrypt, aes_cbc_encrypt, aes_ecb_block
from .status import raise_for_status

SEED_LENGTH = 32  # random bytes in the SET SESSION KEY plaintext; K = the first 16
KEY_LENGTH = 16
TAG_SESSION_KEY_TEMPLATE, TAG_SESSION_KEY = 0xA0, 0x80
TAG_CRYPTOGRAM = 0x86  # padding indicator 01 + cryptogram
TAG_READ_LENGTH = 0x96  # 00 LL LL: plaintext length wanted (00 00 = the rest of the file)
PADDING_INDICATOR = 0x01
WHOLE_FILE = 65536  # Ne of a plain READ BINARY that becomes LL LL = 00 00
SW_SM_UNKNOWN = 0x6F00  # SET SESSION KEY: cryptogram >= modulus; try a fresh seed
SECURE_INS = (Ins.VERIFY, Ins.SELECT, Ins.READ_BINARY)


def oaep() -> padding.OAEP:
    """RSAES-OAEP with SHA-256 as the hash and in MGF1, empty label."""
    return padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def session_key_plaintext(seed: bytes) -> bytes:
    """``A0 22 80 20 <32 bytes>``: what SET SESSION KEY carries under OAEP."""
    if len(seed) != SEED_LENGTH:
        raise ValueError(f"session key seed must be {SEED_LENGTH} bytes")
    return tlv.Tlv.build(TAG_SESSION_KEY_TEMPLATE, tlv.Tlv(TAG_SESSION_KEY, seed)).encode()


def iv_of(key: bytes, counter: int) -> bytes:
    """IV(N) = AES-128-ECB_K(00×12 ‖ N as 4 bytes big-endian)."""
    if not 0 < counter < 1 << 32:
        raise ValueError("secure messaging counter out of range")
    return aes_ecb_block(key, bytes(12) + counter.to_bytes(4, "big"))


def pad(data: bytes) -> bytes:
    """ISO/IEC 7816-4 padding, always added: 80 then 00 to a multiple of 16."""
    padded = data + b"\x80"
    return padded + bytes(-len(padded) % AES_BLOCK)


def unpad(data: bytes) -> bytes | None:
    """Strip 80 00… padding, or None when it is malformed. Every byte of the last block is
    looked at whatever it holds, so the time taken does not say where the padding broke."""
    if not data or len(data) % AES_BLOCK:
        return None
    last = data[-AES_BLOCK:]
    marker = -1  # index in ``last`` of the final 80 with only 00 after it
    seen_nonzero = 0
    for index in range(AES_BLOCK - 1, -1, -1):
        byte = last[index]
        is_marker = int(byte == 0x80) & int(seen_nonzero == 0)
        marker = index if is_marker and marker < 0 else marker
        seen_nonzero |= int(byte != 0)
    if marker < 0:
        return None
    return data[: len(data) - AES_BLOCK + marker]


def encrypt_object(key: bytes, counter: int, plain: bytes) -> bytes:
    """``86 L 01 <cryptogram>`` of ``plain`` under IV(counter)."""
    cryptogram = aes_cbc_encrypt(key, iv_of(key, counter), pad(plain))
    return tlv.Tlv(TAG_CRYPTOGRAM, bytes((PADDING_INDICATOR,)) + cryptogram).encode()


def decrypt_value(key: bytes, counter: int, value: bytes) -> bytes | None:
    """The plaintext of an ``86`` value (indicator + cryptogram), or None when the
    indicator, the length or the padding is wrong."""
    if len(value) < 1 + AES_BLOCK or value[0] != PADDING_INDICATOR:
        return None
    cryptogram = value[1:]
    if len(cryptogram) % AES_BLOCK:
        return None
    return unpad(aes_cbc_decrypt(key, iv_of(key, counter), cryptogram))


def is_secure_command(apdu: CommandApdu) -> bool:
    """What goes under secure messaging: VERIFY with a secret, SELECT EF, READ BINARY.
    Everything else (SELECT of an AP, GET CHALLENGE, 80 2A, an empty VERIFY) stays plain,
    and so does a command on a logical channel other than 0: the card refuses it (6881)
    before its session sees it, so it must not move N."""
    if apdu.cla & CLA_CHANNEL_MASK:
        return False
    if apdu.ins == Ins.VERIFY:
        return bool(apdu.data)
    if apdu.ins == Ins.SELECT:
        return apdu.p1 == SELECT_EF_UNDER_DF
    return apdu.ins == Ins.READ_BINARY


class TextSmTransport:
    """A transport that sends the secure commands under the session key K and passes the
    others through in the clear; it sits on an ``ApduChannel`` and is itself wrapped in
    one by the caller. Selecting an application ends the session (the card forgets K)."""

    def __init__(self, channel: ApduChannel, key: bytes) -> None:
        if len(key) != KEY_LENGTH:
            raise ValueError("session key must be 16 bytes")
        self._channel = channel
        self._key: bytes | None = key
        self.counter = 0  # N of the last secure command

    @property
    def open(self) -> bool:
        return self._key is not None

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]:
        plain = CommandApdu.decode(apdu)
        if plain.ins == Ins.SELECT and plain.p1 == SELECT_BY_DF_NAME:
            self.close()
        if not is_secure_command(plain):
            return self._channel.transceive(plain, sensitive=plain.ins == Ins.VERIFY)
        if self._key is None:
            raise SecureMessagingError("secure messaging session is closed")
        self.counter += 1  # the card advances N on every secure command, refused or not
        return self._exchange(self._key, self.counter, plain)

    def _exchange(self, key: bytes, counter: int, plain: CommandApdu) -> tuple[bytes, int]:
        protected = self._protect(key, counter, plain)
        data, sw = self._channel.transceive(protected, sensitive=True)
        if not data:
            return b"", sw
        return self._unprotect(key, counter, data), sw

    @staticmethod
    def _protect(key: bytes, counter: int, plain: CommandApdu) -> CommandApdu:
        cla = CLA_TEXT_SM | (plain.cla & 0x03)
        if plain.ins == Ins.READ_BINARY:
            wanted = 0 if plain.ne in (None, WHOLE_FILE) else plain.ne
            body = tlv.Tlv(TAG_READ_LENGTH, b"\x00" + wanted.to_bytes(2, "big")).encode()
            return CommandApdu(cla, plain.ins, plain.p1, plain.p2, body, WHOLE_FILE)
        return CommandApdu(cla, plain.ins, plain.p1, plain.p2,
                           encrypt_object(key, counter, plain.data), plain.ne)

    @staticmethod
    def _unprotect(key: bytes, counter: int, data: bytes) -> bytes:
        try:
            obj = tlv.parse_expected(data, TAG_CRYPTOGRAM, "secure messaging response",
                                     alone=True)
        except CardDataError:
            raise CardDataError("secure messaging response: not one 86 data object") from None
        plain = decrypt_value(key, counter, obj.value)
        if plain is None:
            raise CardDataError("secure messaging response: padding indicator, length or "
                                "padding of the 86 object is wrong")
        return plain

    def close(self) -> None:
        self._key = None


def set_session_key(channel: ApduChannel, public_key: rsa.RSAPublicKey,
                    seed: bytes) -> int:
    """SET SESSION KEY ``80 AE 00 00`` (extended Lc 256); returns the status word."""
    cryptogram = public_key.encrypt(session_key_plaintext(seed), oaep())
    apdu = CommandApdu(0x80, Ins.SET_SESSION_KEY, 0x00, 0x00, cryptogram)  # extended Lc
    _, sw = channel.transceive(apdu, sensitive=True)
    return sw


def open_text_sm(channel: ApduChannel, session_key_file_public: rsa.RSAPublicKey, *,
                 seed: bytes | None = None) -> ApduChannel:
    """After the PIN: SET SESSION KEY with a fresh seed from ``secrets`` (``seed`` only for
    known-answer tests), one retry with a fresh seed on 6F00; returns a channel whose
    VERIFY/SELECT EF/READ BINARY go under secure messaging."""
    if session_key_file_public.key_size != 2048:
        raise CardDataError("EF 0006: the session-key encryption key is not RSA-2048")
    first = seed if seed is not None else secrets.token_bytes(SEED_LENGTH)
    sw = set_session_key(channel, session_key_file_public, first)
    if sw == SW_SM_UNKNOWN:
        first = secrets.token_bytes(SEED_LENGTH)
        sw = set_session_key(channel, session_key_file_public, first)
    raise_for_status(sw)
    return ApduChannel(TextSmTransport(channel, first[:KEY_LENGTH]))
