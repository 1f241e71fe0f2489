"""The public key template ``7F49`` (ISO 7816-8), as GENERATE ASYMMETRIC KEY PAIR answers
it on the resident card's applications and on PIV: RSA ``81`` modulus, ``82`` exponent;
EC ``86`` uncompressed point. Encoded by the emulated cards, parsed by the host."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .constants import PivAlgorithm
from .errors import CardDataError
from .tlv import Tlv, parse_template

TAG_PUBLIC_KEY = 0x7F49
TAG_MODULUS, TAG_EXPONENT, TAG_POINT = 0x81, 0x82, 0x86
WHAT = "generated public key"

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
CURVES: dict[int, ec.EllipticCurve] = {PivAlgorithm.ECC_P256: ec.SECP256R1(),
                                       PivAlgorithm.ECC_P384: ec.SECP384R1()}


def _unsigned(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def encode_public_key(key: PublicKey) -> bytes:
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        return Tlv.build(TAG_PUBLIC_KEY, Tlv(TAG_MODULUS, _unsigned(numbers.n)),
                         Tlv(TAG_EXPONENT, _unsigned(numbers.e))).encode()
    point = key.public_bytes(serialization.Encoding.X962,
                             serialization.PublicFormat.UncompressedPoint)
    return Tlv.build(TAG_PUBLIC_KEY, Tlv(TAG_POINT, point)).encode()


def _rsa_2048(fields: dict[int, bytes]) -> rsa.RSAPublicKey:
    if TAG_MODULUS not in fields or TAG_EXPONENT not in fields:
        raise CardDataError("generated RSA-2048 key: modulus (81) or exponent (82) missing")
    modulus = int.from_bytes(fields[TAG_MODULUS], "big")
    exponent = int.from_bytes(fields[TAG_EXPONENT], "big")
    if modulus.bit_length() != 2048:
        raise CardDataError("generated RSA-2048 key: the modulus (81) is not 2048 bits")
    if exponent < 3 or exponent % 2 == 0:
        raise CardDataError("generated RSA-2048 key: public exponent is not odd and >= 3")
    return rsa.RSAPublicNumbers(exponent, modulus).public_key()


def parse_rsa_public_key(data: bytes) -> rsa.RSAPublicKey:
    """An RSA-2048 key in exactly one ``7F49`` template."""
    return _rsa_2048(parse_template(data, TAG_PUBLIC_KEY, WHAT, alone=True))


def parse_public_key(data: bytes, algorithm: int) -> PublicKey:
    """A key of PIV ``algorithm`` (RSA-2048, ECC P-256/P-384) in exactly one ``7F49``."""
    fields = parse_template(data, TAG_PUBLIC_KEY, WHAT, alone=True)
    if algorithm == PivAlgorithm.RSA_2048:
        return _rsa_2048(fields)
    curve = CURVES.get(algorithm)
    if curve is None:
        raise CardDataError(f"{WHAT}: algorithm {algorithm:02X} not supported")
    point = fields.get(TAG_POINT)
    if not point:
        raise CardDataError("generated EC key: no point (86)")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
    except ValueError as exc:
        raise CardDataError(f"generated EC key: point not on the curve ({exc})") from None
