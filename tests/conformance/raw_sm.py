"""The card-info AP's secure messaging, written from RC §4.7 alone (only `cryptography`):
an independent host side to check the emulator's card side and the project's host side
against the vectors of RC §11.2."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

SET_SESSION_KEY_HEADER = bytes.fromhex("80AE0000000100")  # extended Lc 0100, no Le


def session_plaintext(seed: bytes) -> bytes:
    """``A0 22 80 20 <32 bytes>``; only the first 16 become the AES key."""
    assert len(seed) == 32
    return bytes.fromhex("A0228020") + seed


def set_session_key_apdu(card_key: rsa.RSAPublicKey, seed: bytes) -> bytes:
    cryptogram = card_key.encrypt(session_plaintext(seed), padding.OAEP(
        mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
    return SET_SESSION_KEY_HEADER + cryptogram


def _ecb(key: bytes, block: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return encryptor.update(block) + encryptor.finalize()


def iv(key: bytes, counter: int) -> bytes:
    return _ecb(key, bytes(12) + counter.to_bytes(4, "big"))


def pad(data: bytes) -> bytes:
    padded = data + b"\x80"
    return padded + bytes(-len(padded) % 16)


def unpad(data: bytes) -> bytes:
    stripped = data.rstrip(b"\x00")
    assert stripped.endswith(b"\x80"), "ISO padding missing"
    return stripped[:-1]


def encrypt(key: bytes, counter: int, plain: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv(key, counter))).encryptor()
    return encryptor.update(pad(plain)) + encryptor.finalize()


def decrypt(key: bytes, counter: int, cryptogram: bytes) -> bytes:
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv(key, counter))).decryptor()
    return unpad(decryptor.update(cryptogram) + decryptor.finalize())


def do86(key: bytes, counter: int, plain: bytes) -> bytes:
    body = b"\x01" + encrypt(key, counter, plain)
    return b"\x86" + _length(len(body)) + body


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    return bytes([0x81, n]) if n < 0x100 else bytes([0x82]) + n.to_bytes(2, "big")


def sm_verify(key: bytes, counter: int, key_sfi: int, secret: bytes) -> bytes:
    data = do86(key, counter, secret)
    return bytes([0x08, 0x20, 0x00, 0x80 | key_sfi, len(data)]) + data


def sm_select_ef(key: bytes, counter: int, fid: int) -> bytes:
    data = do86(key, counter, fid.to_bytes(2, "big"))
    return bytes([0x08, 0xA4, 0x02, 0x0C, len(data)]) + data


def sm_read_binary(offset: int = 0, length: int = 0) -> bytes:
    """``08 B0 off off 00 00 05 96 03 00 LL LL 00 00``: ``length`` 0 = the whole file."""
    return (bytes([0x08, 0xB0, offset >> 8, offset & 0xFF, 0x00, 0x00, 0x05, 0x96, 0x03, 0x00])
            + length.to_bytes(2, "big") + b"\x00\x00")


def open_response(key: bytes, counter: int, data: bytes) -> bytes:
    assert data[0] == 0x86, f"response object {data[:1].hex()}"
    if data[1] < 0x80:
        start, length = 2, data[1]
    else:
        size = data[1] - 0x80
        start, length = 2 + size, int.from_bytes(data[2:2 + size], "big")
    body = data[start:start + length]
    assert body[0] == 0x01 and start + length == len(data)
    return decrypt(key, counter, body[1:])
