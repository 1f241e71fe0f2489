"""Issue 11 §11: "a card RSA exponent of 2^24 or more crashes PublicKeyCache".

The attack: a card certificate whose RSA key has a public exponent of 2^24 or more is
checked in the token. It used to raise OverflowError out of the cache (a traceback, not
a verdict). Now an exponent in FIPS 186-5's range (odd, 2^16 < e < 2^256) is checked
like any other, and anything beyond it is a failed check, never an exception.
"""

from __future__ import annotations

import datetime as dt
import logging
import math

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from hsm.verify import PublicKeyCache, UnsupportedKeyError, rsa_public_template


def key_with_exponent(e: int) -> rsa.RSAPrivateKey:
    """An RSA-2048 private key with public exponent ``e`` (cryptography generates only
    3 and 65537, so the primes are taken from a generated key and d is recomputed)."""
    while True:
        numbers = rsa.generate_private_key(65537, 2048).private_numbers()
        p, q = numbers.p, numbers.q
        lam = math.lcm(p - 1, q - 1)
        if math.gcd(e, lam) == 1:
            break
    d = pow(e, -1, lam)
    public = rsa.RSAPublicNumbers(e, p * q)
    return rsa.RSAPrivateNumbers(p, q, d, d % (p - 1), d % (q - 1), pow(q, -1, p),
                                 public).private_key()


def card_certificate(key: rsa.RSAPrivateKey) -> x509.Certificate:
    """A certificate for the card's key as a counterfeit card would present it."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "big exponent card")])
    now = dt.datetime.now(dt.UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(7)
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))


@pytest.mark.parametrize("exponent", [(1 << 24) + 1, (1 << 32) + 15, (1 << 255) + 1])
def test_a_large_card_exponent_is_checked_not_crashed(station, exponent: int) -> None:  # type: ignore[no-untyped-def]
    key = key_with_exponent(exponent)
    public_key = card_certificate(key).public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    assert public_key.public_numbers().e == exponent
    challenge = b"token challenge 0123456789abcdef"
    signature = key.sign(challenge, padding.PKCS1v15(), hashes.SHA256())
    cache = PublicKeyCache(station.hsm)
    assert cache.verify_sha256(public_key, challenge, signature)
    assert cache.verify_rsa_sha256(public_key, challenge, signature)  # cached object
    tampered = bytes([signature[0] ^ 1]) + signature[1:]
    assert not cache.verify_sha256(public_key, challenge, tampered)
    assert not cache.verify_sha256(public_key, b"another challenge", signature)


@pytest.mark.parametrize("exponent", [(1 << 256) + 1, (1 << 2040) + 1])
def test_an_exponent_beyond_2_256_is_a_failed_check_with_a_reason(station, caplog,  # type: ignore[no-untyped-def]
                                                                   exponent: int) -> None:
    key = key_with_exponent(exponent)
    public_key = card_certificate(key).public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    signature = key.sign(b"x", padding.PKCS1v15(), hashes.SHA256())
    with caplog.at_level(logging.WARNING, logger="hsm.verify"):
        assert PublicKeyCache(station.hsm).verify_sha256(public_key, b"x", signature) is False
    assert f"RSA public exponent of {exponent.bit_length()} bits" in caplog.text
    with pytest.raises(UnsupportedKeyError, match="not an odd 2\\^16 < e < 2\\^256"):
        rsa_public_template(public_key)


def test_exponent_is_encoded_minimally() -> None:
    for e in (65537, (1 << 24) + 1, (1 << 255) + 1):
        template = rsa_public_template(rsa.RSAPublicNumbers(e, (1 << 2047) + 1).public_key())
        encoded = template[next(a for a in template if a.name == "PUBLIC_EXPONENT")]
        assert isinstance(encoded, bytes)
        assert int.from_bytes(encoded, "big") == e and encoded[0] != 0
