"""Issuance pieces that need no token: the security code, the MF data objects (with a
software stand-in for the token's CV keys)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from cardlib.constants import MfDataObject
from cardlib.cv_certificate import (
    CvCertificate,
    KeyId,
    cv_body,
    decode_cv_certificate,
    make_cv_certificate,
    verify_cv_chain,
)
from tools.issuance.mf_objects import card_key_id, mf_objects
from tools.issuance.security_code import SecurityCode

KEYS = [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(3)]


def test_security_code_is_four_digits_and_hidden() -> None:
    codes = [SecurityCode.generate() for _ in range(2000)]
    assert all(len(c.reveal()) == 4 and c.reveal().isdigit() for c in codes)
    assert len({c.reveal() for c in codes}) > 1000  # not a constant, not a tiny range
    leading = Counter(c.reveal()[0] for c in codes)
    assert set(leading) == set("0123456789")  # zero-padded, the whole range
    code = codes[0]
    assert code.reveal() not in repr(code) and code.reveal() not in str(code)
    assert "redacted" in f"{code}"


@pytest.mark.parametrize("bad", ["123", "12345", "12a4", "１２３４", ""])
def test_security_code_refuses_other_shapes(bad: str) -> None:
    with pytest.raises(ValueError):
        SecurityCode(bad)


@dataclass(frozen=True)
class SoftSigner:
    key_id: KeyId
    key: rsa.RSAPrivateKey

    def public_key(self) -> rsa.RSAPublicKey:
        return self.key.public_key()

    def certify(self, holder: KeyId, public: rsa.RSAPublicKey) -> CvCertificate:
        body = cv_body(self.key_id, holder, public)
        return make_cv_certificate(self.key_id, holder, public,
                                   self.key.sign(body, padding.PKCS1v15(), hashes.SHA256()))


@dataclass(frozen=True)
class SoftHierarchy:
    root_id: KeyId
    mf_certificate: CvCertificate
    mf_intermediate: SoftSigner


def test_mf_objects_chain_from_the_root_to_the_common_key() -> None:
    root = SoftSigner(KeyId.parse("7000020/001"), KEYS[0])
    intermediate = SoftSigner(KeyId.parse("7000022/001"), KEYS[1])
    hierarchy = SoftHierarchy(root.key_id, root.certify(intermediate.key_id,
                                                        intermediate.public_key()), intermediate)
    serial = "400000012719843"
    objects = mf_objects(hierarchy, serial, "131016", dt.date(2035, 2, 17),  # type: ignore[arg-type]
                         KEYS[2].public_key())
    assert objects[MfDataObject.ISSUER_ID] == root.key_id.raw
    assert objects[MfDataObject.CARD_ID] == serial.encode()  # bare ASCII, as RC §3
    assert objects[MfDataObject.MUNICIPALITY] == b"13101"
    assert objects[MfDataObject.EXPIRY] == b"20350217"
    assert objects[MfDataObject.INTERMEDIATE_ISSUER] == intermediate.key_id.raw
    assert MfDataObject.CONTACT_ATR not in objects  # the card answers it from its ATR
    f8, f21 = objects[MfDataObject.ROOT_CV_CERTIFICATE], objects[MfDataObject.CV_CERTIFICATE]
    assert f8[:2] == f21[:2] == b"\x5f\x4e"  # GET DATA answers the contents, no 7F21
    chain = [decode_cv_certificate(f8), decode_cv_certificate(f21)]
    end = verify_cv_chain(chain, {root.key_id.raw: root.public_key()})
    assert end.holder == card_key_id(serial) == KeyId.parse("2719843/000")
    assert end.public_key.public_numbers() == KEYS[2].public_key().public_numbers()
    # Attack: the same chain does not verify under another root key with the same ID.
    with pytest.raises(Exception, match="does not verify"):
        verify_cv_chain(chain, {root.key_id.raw: KEYS[2].public_key()})
