"""PKCS#1 v1.5 type-1 signature of raw bytes (no DigestInfo added), as the real JPKI card
does for COMPUTE DIGITAL SIGNATURE P1 00 and 01 (real-card.md §7.5).

``cryptography`` signs only over a hash it names (it always adds the DigestInfo), so this
one operation goes to OpenSSL's libcrypto itself: ``EVP_PKEY_sign`` with RSA_PKCS1_PADDING
and no digest, i.e. OpenSSL pads and signs; nothing here builds a padding block."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

RSA_PKCS1_PADDING = 1
PKCS1_OVERHEAD = 11  # the largest input is the modulus size minus 11 (RFC 8017 §9.2)


@functools.cache
def _libcrypto() -> ctypes.CDLL:
    name = ctypes.util.find_library("crypto")
    if name is None:
        raise OSError("libcrypto (OpenSSL) not found")
    lib = ctypes.CDLL(name)
    p, size_t = ctypes.c_void_p, ctypes.c_size_t
    lib.d2i_AutoPrivateKey.restype = p
    lib.d2i_AutoPrivateKey.argtypes = [p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_long]
    lib.EVP_PKEY_CTX_new.restype = p
    lib.EVP_PKEY_CTX_new.argtypes = [p, p]
    lib.EVP_PKEY_sign_init.argtypes = [p]
    lib.EVP_PKEY_CTX_set_rsa_padding.argtypes = [p, ctypes.c_int]
    lib.EVP_PKEY_sign.argtypes = [p, ctypes.c_char_p, ctypes.POINTER(size_t), ctypes.c_char_p,
                                  size_t]
    lib.EVP_PKEY_CTX_free.argtypes = [p]
    lib.EVP_PKEY_free.argtypes = [p]
    return lib


def sign_raw_pkcs1(key: rsa.RSAPrivateKey, data: bytes) -> bytes:
    """RSASSA-PKCS1-v1_5 signature of ``data`` exactly as given (type-1 padded)."""
    size = key.key_size // 8
    if not 1 <= len(data) <= size - PKCS1_OVERHEAD:
        raise ValueError(f"raw PKCS#1 input must be 1..{size - PKCS1_OVERHEAD} bytes")
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    lib = _libcrypto()
    cursor = ctypes.c_char_p(der)
    pkey = lib.d2i_AutoPrivateKey(None, ctypes.byref(cursor), len(der))
    if not pkey:
        raise ValueError("libcrypto could not load the key")
    ctx = lib.EVP_PKEY_CTX_new(pkey, None)
    try:
        out, out_len = ctypes.create_string_buffer(size), ctypes.c_size_t(size)
        if (not ctx or lib.EVP_PKEY_sign_init(ctx) != 1
                or lib.EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1
                or lib.EVP_PKEY_sign(ctx, out, ctypes.byref(out_len), data, len(data)) != 1):
            raise ValueError("libcrypto refused the raw PKCS#1 signature")
        return out.raw[: out_len.value]
    finally:
        if ctx:
            lib.EVP_PKEY_CTX_free(ctx)
        lib.EVP_PKEY_free(pkey)
