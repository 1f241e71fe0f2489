"""Each station's log-signing key certified by the station CA (issue 14): what a station's
request must carry, the certificate the CA issues for the key, the bundle a station
installs (each incomplete or forged one refused), and which ``log_signers`` rows a
verifier trusts (only those the station CA it holds vouches for). The CA signs in
software here (``_ca`` patched); the token-signed path is the integration tests'
(tests/integration/test_log_signer_enrolment.py, test_registry_connection_token.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tools.errors import RequestError
from tools.pki import log_signer_certs, station_ca
from tools.pki.station_ca import StationRequest, check_request
from tools.registry import Registry, log_signers
from tools.registry.records import RegistryError
from tools.registry.tls_enrol import read_bundle

from .test_registry_tls import ROLE, STATION_ID, csr


def raw(key: ed25519.Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes_raw()


def software_ca(name: str = "Juki Registry Station CA v1") -> tuple[ec.EllipticCurvePrivateKey,
                                                                   x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


@pytest.fixture
def ca(monkeypatch: pytest.MonkeyPatch) -> x509.Certificate:
    """The station CA, in software: ``issue_log_signer`` signs with it."""
    key, cert = software_ca()
    monkeypatch.setattr(station_ca, "_ca", lambda _hsm: (key, cert))
    return cert


def request(log_key: bytes, uid: str = STATION_ID, cn: str = ROLE) -> StationRequest:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                         x509.NameAttribute(NameOID.USER_ID, uid)])
    return StationRequest(uid, cn, ec.generate_private_key(ec.SECP256R1()).public_key(),
                          subject, log_key)


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


# --- the request --------------------------------------------------------------------------

def test_the_request_carries_the_stations_log_key() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    pem = csr(log_extension=log_signers.request_extension(raw(key)))
    extension = x509.load_pem_x509_csr(pem).extensions.get_extension_for_oid(
        log_signers.LOG_KEY_EXTENSION)
    assert not extension.critical
    assert check_request(pem).log_key == raw(key)


def test_a_request_without_the_log_key_is_refused_with_what_to_do() -> None:
    with pytest.raises(RequestError, match=r"no log-signing key.*juki station enroll-registry"):
        check_request(csr(with_log_key=False))


def test_a_log_key_that_is_not_ed25519_is_refused() -> None:
    ec_spki = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    forged = x509.UnrecognizedExtension(log_signers.LOG_KEY_EXTENSION, ec_spki)
    with pytest.raises(RequestError, match="must hold an Ed25519 key"):
        check_request(csr(log_extension=forged))
    garbage = x509.UnrecognizedExtension(log_signers.LOG_KEY_EXTENSION, b"\x30\x03\x02\x01\x01")
    with pytest.raises(RequestError, match="not a public key"):
        check_request(csr(log_extension=garbage))


# --- the certificate the CA issues ------------------------------------------------------

def test_the_log_signer_certificate_is_for_log_signing_only(ca: x509.Certificate) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    cert = log_signer_certs.issue_log_signer(None, request(raw(key)), 30)  # type: ignore[arg-type]
    cert.verify_directly_issued_by(ca)
    assert cert.subject == request(raw(key)).subject and cert.issuer == ca.subject
    assert cert.public_key().public_bytes_raw() == raw(key)  # type: ignore[union-attr]
    ext = cert.extensions
    usage = ext.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature
    assert not (usage.value.key_cert_sign or usage.value.crl_sign or usage.value.key_agreement
                or usage.value.content_commitment or usage.value.key_encipherment)
    assert list(ext.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        log_signers.LOG_SIGNING_EKU]
    constraints = ext.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and not constraints.value.ca
    assert ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier == \
        x509.SubjectKeyIdentifier.from_public_key(ca.public_key()).digest  # type: ignore[arg-type]
    ext.get_extension_for_class(x509.SubjectKeyIdentifier)
    # and a verifier holding the CA takes it as the station's key
    checked = log_signers.check_certificate(der(cert), [ca], STATION_ID)
    assert (checked.public, checked.key_id) == (raw(key), log_signers.key_id(raw(key)))
    signature = key.sign(b"juki-log-append\n")
    assert checked.verifies(signature, b"juki-log-append\n")
    assert not checked.verifies(signature, b"juki-log-append\nx")


def test_the_validity_is_bounded(ca: x509.Certificate) -> None:
    with pytest.raises(RequestError, match="validity"):
        log_signer_certs.issue_log_signer(None, request(raw(ed25519.Ed25519PrivateKey.generate())),  # type: ignore[arg-type]
                                          0)


# --- what a verifier trusts -------------------------------------------------------------

def _tls_like(ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, public, uid: str,  # type: ignore[no-untyped-def]
              eku: x509.ObjectIdentifier = ExtendedKeyUsageOID.CLIENT_AUTH) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ROLE),
                                     x509.NameAttribute(NameOID.USER_ID, uid)]))
            .issuer_name(ca.subject).public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
            .sign(ca_key, hashes.SHA256()))


def test_a_verifier_refuses_every_certificate_its_station_ca_did_not_issue_for_log_signing(
        ca: x509.Certificate) -> None:
    key = raw(ed25519.Ed25519PrivateKey.generate())
    good = log_signer_certs.issue_log_signer(None, request(key), 30)  # type: ignore[arg-type]
    # another CA under the very same name (the database owner's, say)
    rogue_key, rogue = software_ca(ca.subject.rfc4514_string().removeprefix("CN="))
    assert rogue.subject == ca.subject
    forged = _tls_like(rogue_key, rogue, ed25519.Ed25519PublicKey.from_public_bytes(key),
                       STATION_ID, log_signers.LOG_SIGNING_EKU)
    with pytest.raises(ValueError, match="not issued by a station CA"):
        log_signers.check_certificate(der(forged), [ca], STATION_ID)
    # the CA's own TLS certificate for the station: not for log signing
    real_key, _ = software_ca()
    tls = _tls_like(*_ca_of(station_ca), ec.generate_private_key(ec.SECP256R1()).public_key(),
                    STATION_ID)
    with pytest.raises(ValueError, match="not a certificate for log signing"):
        log_signers.check_certificate(der(tls), [ca], STATION_ID)
    with pytest.raises(ValueError, match="names station 'city-hall-3', not 'city-hall-4'"):
        log_signers.check_certificate(der(good), [ca], "city-hall-4")
    ec_log = _tls_like(*_ca_of(station_ca), real_key.public_key(), STATION_ID,
                       log_signers.LOG_SIGNING_EKU)
    with pytest.raises(ValueError, match="not Ed25519"):
        log_signers.check_certificate(der(ec_log), [ca], STATION_ID)
    with pytest.raises(ValueError, match="not issued by a station CA"):
        log_signers.check_certificate(der(good), [], STATION_ID)  # no anchor: no trust
    assert log_signers.check_certificate(der(good), [rogue, ca], STATION_ID).public == key


def _ca_of(module) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:  # type: ignore[no-untyped-def]
    return module._ca(None)


def test_only_rows_the_station_ca_vouches_for_are_trusted(ca: x509.Certificate,
                                                          tmp_path: Path) -> None:
    registry = Registry(tmp_path / "registry.sqlite")  # migrated to 10: log_signers there
    db = registry.connection()
    mine, other = (raw(ed25519.Ed25519PrivateKey.generate()) for _ in range(2))
    good = log_signer_certs.issue_log_signer(None, request(mine), 30)  # type: ignore[arg-type]
    log_signers.store(db, STATION_ID, good)
    log_signers.store(db, STATION_ID, good)  # again: a no-op
    # a row naming another key than its certificate's (the owner swapping keys)
    db.execute("INSERT INTO log_signers (station_id, key_id, certificate) VALUES (?, ?, ?)",
               (STATION_ID, log_signers.key_id(other), der(good)))
    # the certificate of one station filed under another's id
    log_signers.store(db, "city-hall-4", good)
    # a certificate from another CA with the same name
    rogue_key, rogue = software_ca(ca.subject.rfc4514_string().removeprefix("CN="))
    log_signers.store(db, "city-hall-5", _tls_like(
        rogue_key, rogue, ed25519.Ed25519PublicKey.from_public_bytes(other), "city-hall-5",
        log_signers.LOG_SIGNING_EKU))
    assert db.execute("SELECT count(*) FROM log_signers").fetchone()[0] == 4
    trusted = log_signers.trusted(db, [ca])
    assert list(trusted) == [(STATION_ID, log_signers.key_id(mine))]
    assert trusted[(STATION_ID, log_signers.key_id(mine))].public == mine
    assert log_signers.trusted(db, [rogue]) == {
        ("city-hall-5", log_signers.key_id(other)): log_signers.SignerKey(
            "city-hall-5", log_signers.key_id(other), other)}  # each verifier its own anchors
    registry.close()


# --- the registry operator's own key ----------------------------------------------------

def test_the_operators_own_key_is_certified_once(ca: x509.Certificate, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    note = raw(ed25519.Ed25519PrivateKey.generate())
    monkeypatch.setattr(log_signer_certs, "latest_version", lambda _h, _r: 2)
    monkeypatch.setattr(log_signer_certs.eddsa, "public_keys", lambda _h, _r: {1: b"x" * 32, 2: note})
    monkeypatch.setattr(log_signer_certs, "station_ca_certificates", lambda _h: [ca])
    registry = Registry(tmp_path / "registry.sqlite")
    db = registry.connection()
    first = log_signer_certs.ensure_own_log_signer(None, "registry-op", db)  # type: ignore[arg-type]
    assert (first.station_id, first.public) == ("registry-op", note)
    (cert,) = [x509.load_der_x509_certificate(bytes(r[0]))
               for r in db.execute("SELECT certificate FROM log_signers")]
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == \
        log_signer_certs.OPERATOR_NAME
    assert log_signer_certs.ensure_own_log_signer(None, "registry-op", db) == first  # type: ignore[arg-type]
    assert db.execute("SELECT count(*) FROM log_signers").fetchone()[0] == 1  # not reissued
    registry.close()


def test_a_row_for_the_operators_key_its_ca_did_not_issue_is_refused(
        ca: x509.Certificate, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    note = raw(ed25519.Ed25519PrivateKey.generate())
    monkeypatch.setattr(log_signer_certs, "latest_version", lambda _h, _r: 1)
    monkeypatch.setattr(log_signer_certs.eddsa, "public_keys", lambda _h, _r: {1: note})
    monkeypatch.setattr(log_signer_certs, "station_ca_certificates", lambda _h: [ca])
    registry = Registry(tmp_path / "registry.sqlite")
    db = registry.connection()
    rogue_key, rogue = software_ca("someone else")
    log_signers.store(db, "registry-op", _tls_like(
        rogue_key, rogue, ed25519.Ed25519PublicKey.from_public_bytes(note), "registry-op",
        log_signers.LOG_SIGNING_EKU))
    with pytest.raises(RegistryError, match="did not issue"):
        log_signer_certs.ensure_own_log_signer(None, "registry-op", db)  # type: ignore[arg-type]
    registry.close()


def test_an_operator_home_without_a_note_key_is_told_to_run_hsm_init(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from hsm.errors import KeyNotFoundError

    monkeypatch.setattr(log_signer_certs, "latest_version", lambda _h, _r: None)
    with pytest.raises(KeyNotFoundError, match="juki hsm init"):
        log_signer_certs.ensure_own_log_signer(None, "registry-op", None)  # type: ignore[arg-type]


# --- the bundle a station installs ------------------------------------------------------

def _bundle(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def test_the_bundle_must_hold_the_three_certificates_once_each(ca: x509.Certificate) -> None:
    ca_key, _ = _ca_of(station_ca)
    log = log_signer_certs.issue_log_signer(None, request(raw(ed25519.Ed25519PrivateKey.generate())), 30)  # type: ignore[arg-type]
    tls = _tls_like(ca_key, ca, ec.generate_private_key(ec.SECP256R1()).public_key(), STATION_ID)
    bundle = read_bundle(_bundle(tls, log, ca))
    assert (bundle.tls, bundle.log_signer, bundle.ca) == (tls, log, ca)
    assert read_bundle(_bundle(ca, log, tls)) == bundle  # told apart by what they are for
    for certs, missing in (((tls,), "log-signer"), ((tls, log), "station CA"),
                           ((log, ca), "TLS client"), ((tls, log, log, ca), "log-signer")):
        with pytest.raises(RequestError, match=f"{missing} certificate.*exactly once"):
            read_bundle(_bundle(*certs))
    other = _tls_like(ca_key, ca, ec.generate_private_key(ec.SECP256R1()).public_key(),
                      STATION_ID, ExtendedKeyUsageOID.SERVER_AUTH)
    with pytest.raises(RequestError, match="certificate 4 of the bundle"):
        read_bundle(_bundle(tls, log, ca, other))
    with pytest.raises(RequestError, match="not PEM certificates"):
        read_bundle(b"not a certificate")


def test_a_row_laid_for_a_stations_key_beforehand_is_refused_not_silently_kept(
        ca: x509.Certificate, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """log_signers is append-only and store a no-op on the same key: a forged row laid
    first (by whoever can write the table) would have left the station's appends
    unprovable to everyone; issue-station refuses instead."""
    monkeypatch.setattr(log_signer_certs, "station_ca_certificates", lambda _h: [ca])
    registry = Registry(tmp_path / "registry.sqlite")
    db = registry.connection()
    mine, theirs = (raw(ed25519.Ed25519PrivateKey.generate()) for _ in range(2))
    cert = log_signer_certs.issue_log_signer(None, request(mine), 30)  # type: ignore[arg-type]
    assert log_signer_certs.store_checked(None, db, STATION_ID, cert) == log_signers.key_id(mine)  # type: ignore[arg-type]
    assert log_signer_certs.store_checked(None, db, STATION_ID, cert) == log_signers.key_id(mine)  # type: ignore[arg-type]
    rogue_key, rogue = software_ca(ca.subject.rfc4514_string().removeprefix("CN="))
    log_signers.store(db, STATION_ID, _tls_like(
        rogue_key, rogue, ed25519.Ed25519PublicKey.from_public_bytes(theirs), STATION_ID,
        log_signers.LOG_SIGNING_EKU))
    with pytest.raises(RegistryError, match=r"did not issue.*new log key"):
        log_signer_certs.refuse_foreign_row(None, db, STATION_ID, log_signers.key_id(theirs))  # type: ignore[arg-type]
    with pytest.raises(RegistryError, match="did not issue"):
        log_signer_certs.store_checked(  # type: ignore[arg-type]
            None, db, STATION_ID, log_signer_certs.issue_log_signer(None, request(theirs), 30))  # type: ignore[arg-type]
    assert list(log_signers.trusted(db, [ca])) == [(STATION_ID, log_signers.key_id(mine))]
    registry.close()


def test_the_log_signer_names_the_station_even_when_the_csr_left_it_to_the_operator(
        ca: x509.Certificate) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    checked = check_request(csr(uid=None, log_extension=log_signers.request_extension(raw(key))),
                            STATION_ID)
    cert = log_signer_certs.issue_log_signer(None, checked, 30)  # type: ignore[arg-type]
    assert log_signers.check_certificate(der(cert), [ca], STATION_ID).public == raw(key)
