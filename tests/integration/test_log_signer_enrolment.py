"""A station's log-signing key through enrolment, on a real token (issue 14): the CSR
`juki station enroll-registry` writes carries the station token's checkpoint-note key
(made there if the token has none yet: a station enrols before `hsm init`), and
`--install` takes only the whole bundle the registry operator hands back: the TLS
certificate for its TLS key, a log-signer certificate for its note key naming it, and
the station CA that issued both. Every incomplete or forged bundle is refused, naming
what is wrong, and nothing is written. No registry needed: the CA signs in software here
(the token-signed path and the registry's log_signers row: test_registry_connection_token.py)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tools.pki.station_ca import StationRequest, check_request
from tools.registry import log_signers
from tools.registry.tls import station_ca_anchors
from tools.rig.rig import Rig
from tools.station.home import StationHome

from ..conftest import ROOT, juki

STATION_ID = "enrol-a1"
INSTALLED = ("station.pem", "log-signer.pem", "station-ca.pem", "openssl.cnf")


def note_keys(home: Path) -> dict[int, bytes]:
    """The home's checkpoint-note public keys, from its token, in a process of its own."""
    script = ("import json, sys\nfrom pathlib import Path\nfrom hsm import eddsa\n"
              "from hsm.roles import KeyRole\nfrom tools.station.home import StationHome\n"
              "hsm = StationHome(Path(sys.argv[1])).open_token()\n"
              "print(json.dumps({v: k.hex() for v, k in "
              "eddsa.public_keys(hsm, KeyRole.AUDIT_NOTE_SIGNER).items()}))\n")
    result = subprocess.run([sys.executable, "-c", script, str(home)], capture_output=True,
                            text=True, cwd=ROOT, timeout=60, check=True)
    return {int(v): bytes.fromhex(k) for v, k in json.loads(result.stdout).items()}


class Ca:
    """A station CA in software (the name the real one has: only the key tells them apart)."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Juki Registry Station CA v1")])
        self.cert = self._builder(name, self.key.public_key()).add_extension(
            x509.BasicConstraints(ca=True, path_length=0), critical=True).sign(
            self.key, hashes.SHA256())

    def _builder(self, subject: x509.Name, public) -> x509.CertificateBuilder:  # type: ignore[no-untyped-def]
        now = dt.datetime.now(dt.UTC)
        issuer = subject if not hasattr(self, "cert") else self.cert.subject
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
                .public_key(public).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=30)))

    def issue(self, subject: x509.Name, public, eku: x509.ObjectIdentifier) -> x509.Certificate:  # type: ignore[no-untyped-def]
        return (self._builder(subject, public)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
                .sign(self.key, hashes.SHA256()))

    def tls(self, request: StationRequest) -> x509.Certificate:
        return self.issue(request.subject, request.public_key, ExtendedKeyUsageOID.CLIENT_AUTH)

    def log(self, request: StationRequest, key: bytes | None = None,
            subject: x509.Name | None = None) -> x509.Certificate:
        public = ed25519.Ed25519PublicKey.from_public_bytes(key or request.log_key)
        return self.issue(subject or request.subject, public, log_signers.LOG_SIGNING_EKU)


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("enrol")
    station = StationHome(root)
    station.write_settings({"station": {"id": STATION_ID}})
    Rig(station).ensure_token()
    return root


@pytest.fixture(scope="module")
def request_(home: Path) -> StationRequest:
    asked = json.loads(juki(home, "station", "enroll-registry", "--json").stdout)
    assert asked["log_key_created"] is True  # a fresh token: the note key made here
    request = check_request(Path(asked["csr"]).read_bytes())
    assert note_keys(home) == {1: request.log_key}  # the token's key is the one asked for
    assert asked["log_key_id"] == log_signers.key_id(request.log_key)
    again = json.loads(juki(home, "station", "enroll-registry", "--json").stdout)
    assert again["log_key_created"] is False and again["log_key_id"] == asked["log_key_id"]
    return request


def refused(home: Path, tmp_path: Path, bundle: bytes, why: str) -> None:
    before = {p.name: p.read_bytes() for p in (home / "registry-tls").iterdir()}
    path = tmp_path / "bundle.pem"
    path.write_bytes(bundle)
    result = juki(home, "station", "enroll-registry", "--install", str(path), check=None)
    assert result.returncode != 0 and why in result.stderr, result.stderr
    assert {p.name: p.read_bytes() for p in (home / "registry-tls").iterdir()} == before


def test_every_incomplete_or_forged_bundle_is_refused_and_nothing_is_written(
        home: Path, request_: StationRequest, tmp_path: Path) -> None:
    ca = Ca()
    tls, log = ca.tls(request_), ca.log(request_)
    assert not any((home / "registry-tls" / name).exists() for name in INSTALLED[:3])
    refused(home, tmp_path, pem(tls), "log-signer certificate (EKU log signing) exactly once")
    refused(home, tmp_path, pem(tls, ca.cert), "log-signer certificate")
    refused(home, tmp_path, pem(tls, log), "station CA certificate exactly once")
    stranger = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    refused(home, tmp_path, pem(tls, ca.log(request_, stranger), ca.cert),
            "not for this station's checkpoint-note key")
    other_station = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "juki_station_enrol_a2"),
                               x509.NameAttribute(NameOID.USER_ID, "enrol-a2")])
    refused(home, tmp_path, pem(tls, ca.log(request_, subject=other_station), ca.cert),
            "names station 'enrol-a2'")
    impostor = Ca()  # same name, its own key: did not issue the certificates
    refused(home, tmp_path, pem(tls, log, impostor.cert), "did not issue the TLS certificate")
    refused(home, tmp_path, pem(impostor.tls(request_), log, impostor.cert),
            "did not issue the log-signer certificate")
    no_eku = ca.issue(request_.subject, request_.public_key, ExtendedKeyUsageOID.SERVER_AUTH)
    refused(home, tmp_path, pem(no_eku, log, ca.cert), "neither for TLS client auth")


def test_the_whole_bundle_installs_each_certificate_in_its_file(
        home: Path, request_: StationRequest, tmp_path: Path) -> None:
    ca = Ca()
    tls, log = ca.tls(request_), ca.log(request_)
    bundle = tmp_path / "issued.pem"
    bundle.write_bytes(pem(ca.cert, log, tls))  # in any order
    done = json.loads(juki(home, "station", "enroll-registry", "--install", str(bundle),
                           "--json").stdout)
    assert done["log_key_id"] == log_signers.key_id(request_.log_key)
    directory = home / "registry-tls"
    assert (directory / "station.pem").read_bytes() == pem(tls)  # alone: libpq sends it
    assert (directory / "log-signer.pem").read_bytes() == pem(log)
    assert station_ca_anchors(home) == [ca.cert]
    enrolment = json.loads((directory / "enrolment.json").read_text())
    assert enrolment["log_key_id"] == done["log_key_id"] and "requested_log_key" not in enrolment
    # a later forged bundle leaves the installed one as it was
    impostor = Ca()
    refused(home, tmp_path, pem(impostor.tls(request_), impostor.log(request_), ca.cert),
            "did not issue")
    assert station_ca_anchors(home) == [ca.cert]
