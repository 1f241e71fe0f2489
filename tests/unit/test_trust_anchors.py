"""The six published CA keys (RC §6.1) match RC's copy checks."""

from __future__ import annotations

import hashlib

import pytest

from cardlib.cv_certificate import verify_cv_chain
from cardlib.trust_anchors import JPKI_TEST, PRODUCTION, PUBLISHED_ANCHORS, published_anchor_keys
from tests.helpers import RC_COPY_CHECKS

KEY_IDS = {  # RC §6.1 "key ID" lines
    "5000020/001 (A8)": "35 30 30 30 30 32 30 08 05 30 30 31 00 00 00 A8",
    "5000023/001": "35 30 30 30 30 32 33 08 05 30 30 31 00 00 00 00",
    "5000033/001": "35 30 30 30 30 33 33 08 05 30 30 31 00 00 00 00",
    "6000020/001 (A8)": "36 30 30 30 30 32 30 08 05 30 30 31 00 00 00 A8",
    "6000023/001": "36 30 30 30 30 32 33 08 05 30 30 31 00 00 00 00",
    "6000033/001": "36 30 30 30 30 33 33 08 05 30 30 31 00 00 00 00",
}


@pytest.mark.parametrize("anchor", PUBLISHED_ANCHORS, ids=lambda a: a.key_id.text)
def test_each_modulus_matches_the_copy_check(anchor) -> None:  # type: ignore[no-untyped-def]
    modulus = anchor.modulus.to_bytes(256, "big")
    assert hashlib.sha256(modulus).hexdigest() == RC_COPY_CHECKS[anchor.key_id.text]
    assert anchor.modulus.bit_length() == 2048 and anchor.modulus % 2 == 1
    assert anchor.key_id.raw == bytes.fromhex(KEY_IDS[anchor.key_id.text])
    assert anchor.public_key().public_numbers().e == 65537
    assert anchor.hierarchy == (PRODUCTION if anchor.key_id.number[0] == "5" else JPKI_TEST)


def test_six_distinct_anchors_and_what_they_sign() -> None:
    assert sorted(a.key_id.text for a in PUBLISHED_ANCHORS) == sorted(RC_COPY_CHECKS)
    assert len({a.modulus for a in PUBLISHED_ANCHORS}) == 6
    signs = {a.key_id.number[1:]: a.signs for a in PUBLISHED_ANCHORS}
    assert signs["000020"] == "MF GET DATA 00F8"
    assert signs["000023"] == "券面事項確認AP EF 0004"
    assert signs["000033"] == "券面事項入力補助AP EF 0004"
    assert len(published_anchor_keys()) == 6


def test_no_published_anchor_accepts_a_self_made_certificate() -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    from cardlib.cv_certificate import CvChainError, KeyId, cv_body, make_cv_certificate

    attacker = rsa.generate_private_key(65537, 2048)
    issuer = PUBLISHED_ANCHORS[5].key_id
    holder = KeyId.parse("6000031/001")
    body = cv_body(issuer, holder, attacker.public_key())
    forged = make_cv_certificate(issuer, holder, attacker.public_key(),
                                 attacker.sign(body, padding.PKCS1v15(), hashes.SHA256()))
    with pytest.raises(CvChainError, match="does not verify under 6000033/001"):
        verify_cv_chain([forged], published_anchor_keys())
