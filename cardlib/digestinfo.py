"""PKCS#1 v1.5 DigestInfo (RFC 8017 §9.2): the host builds it, the card signs it.

The DER prefixes are fixed per hash (RFC 8017 §9.2, note 1); they are data, so we
match them rather than parse ASN.1. The card side turns a DigestInfo back into
(hash, digest) so that ``cryptography`` pads and signs it (``Prehashed``)."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

PREFIXES: dict[str, bytes] = {
    "sha1": bytes.fromhex("3021300906052b0e03021a05000414"),
    "sha224": bytes.fromhex("302d300d06096086480165030402040500041c"),
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}
ALGORITHMS: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1, "sha224": hashes.SHA224, "sha256": hashes.SHA256,
    "sha384": hashes.SHA384, "sha512": hashes.SHA512,
}


def digest_info(algorithm: hashes.HashAlgorithm, digest: bytes) -> bytes:
    if algorithm.name not in PREFIXES or len(digest) != algorithm.digest_size:
        raise ValueError(f"no DigestInfo for {algorithm.name} with a {len(digest)}-byte digest")
    return PREFIXES[algorithm.name] + digest


def prehashed_digest_info(data: bytes) -> tuple[hashes.HashAlgorithm, bytes] | None:
    """(hash algorithm, digest) of a DigestInfo, or None if it is not one we know."""
    for name, prefix in PREFIXES.items():
        algorithm = ALGORITHMS[name]()
        if data.startswith(prefix) and len(data) == len(prefix) + algorithm.digest_size:
            return algorithm, data[len(prefix):]
    return None


def rsa_sha256_signature_verifies(key: rsa.RSAPublicKey, signature: bytes, message: bytes) -> bool:
    """Whether ``signature`` is sha256WithRSAEncryption (PKCS#1 v1.5) of ``message`` under
    ``key``; a signature of the wrong length is simply not valid."""
    try:
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True
