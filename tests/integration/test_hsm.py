"""python-pkcs11 -> SoftHSM: the key inventory, CA, RNG, signature checks, locking."""

from __future__ import annotations

import threading

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from hsm.ca import CardCertificateRequest, TokenKey, ensure_signer_certificate, issue_certificate
from hsm.keys import inventory
from hsm.roles import KeyRole
from hsm.verify import ChallengeBook, PublicKeyCache


def test_ca_creation_is_idempotent(station) -> None:  # type: ignore[no-untyped-def]
    first = ensure_signer_certificate(station.hsm, KeyRole.RESIDENT_ISSUING_CA)
    second = ensure_signer_certificate(station.hsm, KeyRole.RESIDENT_ISSUING_CA)
    assert not second.created
    assert first.certificate == second.certificate
    first.certificate.verify_directly_issued_by(first.certificate)  # self-signed by the token key


def test_static_keys_are_sensitive_and_never_extractable(station) -> None:  # type: ignore[no-untyped-def]
    keys = inventory(station.hsm)
    assert [k.role for k in keys] == ["audit-checkpoint-note-signer", "audit-checkpoint-signer",
        "audit-entry-mac",
                                      "card-master-dek",
                                      "card-master-enc", "card-master-mac",
                                      "cv-card-info-ca", "cv-card-info-signer",
                                      "cv-mf-intermediate", "cv-root", "cv-surface-ca",
                                      "cv-surface-signer", "operator-ca",
                                      "operator-card-management-master", "operator-session-mac",
                                      "resident-issuing-ca", "resident-sign-ca"]
    for key in keys:
        assert key.sensitive and not key.extractable
        assert key.always_sensitive and key.never_extractable
    for ca in keys[-2:]:  # the auth CA and the signature CA
        assert ca.has_certificate and ca.bits == 2048


def test_card_certificate_is_signed_by_the_token(station) -> None:  # type: ignore[no-untyped-def]
    card_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = ensure_signer_certificate(station.hsm, KeyRole.RESIDENT_ISSUING_CA).certificate
    import datetime as dt

    ca_key = TokenKey.current(station.hsm, KeyRole.RESIDENT_ISSUING_CA)
    cert = issue_certificate(ca_key, CardCertificateRequest(
        card_key.public_key(), "123456789012345", dt.date.today() + dt.timedelta(days=30)))
    cert.verify_directly_issued_by(ca)
    assert cert.public_key().public_numbers() == card_key.public_key().public_numbers()


def test_random_and_single_use_challenges(station) -> None:  # type: ignore[no-untyped-def]
    book = ChallengeBook(station.hsm)
    challenges = {book.issue() for _ in range(50)}
    assert len(challenges) == 50 and all(len(c) == 32 for c in challenges)
    one = next(iter(challenges))
    assert book.redeem(one) and not book.redeem(one)
    assert not book.redeem(b"\x00" * 32)


def test_signature_checks_in_the_token(station) -> None:  # type: ignore[no-untyped-def]
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    data = b"challenge"
    signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    cache = PublicKeyCache(station.hsm)
    assert cache.verify_rsa_sha256(key.public_key(), data, signature)
    tampered = bytes([signature[0] ^ 1]) + signature[1:]
    assert not cache.verify_rsa_sha256(key.public_key(), data, tampered)
    assert not cache.verify_rsa_sha256(key.public_key(), b"other", signature)
    assert not cache.verify_rsa_sha256(key.public_key(), data, signature[:-1])


def test_threads_share_the_token_safely(station) -> None:  # type: ignore[no-untyped-def]
    """Without the process-wide lock this crashes the interpreter (reference §5)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signature = key.sign(b"x", padding.PKCS1v15(), hashes.SHA256())
    cache = PublicKeyCache(station.hsm)
    book = ChallengeBook(station.hsm)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(40):
                assert cache.verify_rsa_sha256(key.public_key(), b"x", signature)
                book.issue()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_session_is_reopened_after_reset(station) -> None:  # type: ignore[no-untyped-def]
    station.hsm.reset()
    assert len(station.hsm.random_bytes(16)) == 16
