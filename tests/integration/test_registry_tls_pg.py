"""A station proves itself to a shared registry with a TLS key in its own token (issue 14,
part 1), end to end through the `juki` CLI on a real PostgreSQL in the TLS-and-roles
configuration (tests/integration/registry_tls_cluster.py): enrolment (key in the token,
CSR), issue by the station CA in the registry operator's token, install, connect; and
every way around it refused by the server: no certificate, another CA's certificate, a
revoked certificate. The key never exists in a file; the token PIN is in no argv, no
environment and no connection string; libpq's use of the token leaves the station's own
PKCS#11 session working."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.rig.rig import Rig
from tools.station.home import StationHome

from ..conftest import ROOT, juki
from .registry_tls_cluster import DATABASE, Cluster, start_cluster

STATION_ID = "tls-a1-st1"
ROLE = "juki_station_tls_a1_st1"


def make_home(path: Path, station_id: str, url: str) -> Path:
    """A station home with a SoftHSM token of its own (no readers, no cards needed)."""
    home = StationHome(path)
    home.write_settings({"station": {"id": station_id}, "registry": {"url": url}})
    Rig(home).ensure_token()
    return path


@pytest.fixture(scope="module")
def ca_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The registry operator's home: the station CA's key in its token."""
    return tmp_path_factory.mktemp("ca-home")


@pytest.fixture(scope="module")
def cluster(ca_home: Path) -> Iterator[Cluster]:
    running = start_cluster(ca_home, juki)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def station(cluster: Cluster, ca_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = make_home(tmp_path_factory.mktemp("tls-station"), STATION_ID, cluster.station_url())
    enrolled = json.loads(juki(home, "station", "enroll-registry", "--json").stdout)
    assert enrolled["role"] == ROLE and Path(enrolled["csr"]).is_file()
    cert = home / "issued.pem"
    juki(home, "registry", "issue-station", enrolled["csr"], "--ca-home", str(ca_home),
         "--admin-db", cluster.owner_url(), "--out", str(cert), "--json")
    juki(home, "station", "enroll-registry", "--install", str(cert), "--json")
    # every station key (RSA, AES, EC, Ed25519) in the main token, their events written
    # to the registry over the TLS connection: libp11 uses the separate TLS token
    juki(home, "hsm", "init")
    return home


def probe(home: Path) -> dict[str, object]:
    """The probe in a fresh interpreter, on this home's own registry: JUKI_DB (the suite's
    shared server in its PostgreSQL pass) would win over the home's ``[registry] url``."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PKCS11_")}
    environment["JUKI_DB"] = StationHome(home).settings()["registry"]["url"]
    result = subprocess.run([sys.executable, "-m", "tests.integration.registry_tls_probe", str(home)],
                            capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
                            env=environment)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_good_station_connects_as_its_own_role_over_tls(station: Path) -> None:
    seen = probe(station)
    assert seen["user"] == ROLE and seen["second_user"] == ROLE
    assert seen["ssl"] is True and f"CN={ROLE}" in str(seen["client_dn"])
    # the CLI too: a station command on the registry, over the same identity
    out = json.loads(juki(station, "db", "upgrade", "--json").stdout)
    assert out["backend"] == "postgresql" and out["schema_version"] >= 8


def test_libpq_using_the_token_leaves_the_stations_pkcs11_session_working(station: Path) -> None:
    seen = probe(station)
    assert seen["signed_after_close"] is True and seen["same_session"] is True


def test_the_token_pin_is_in_no_argv_environment_or_connection_string(station: Path) -> None:
    seen = probe(station)
    assert seen["pin_in_environ"] is False and seen["pin_in_cmdline"] is False
    assert seen["pin_in_dsn"] is False
    assert "pin-source=file:" in str(seen["dsn"]) and "pin-value" not in str(seen["dsn"])
    for name in ("registry-tls.pin", "registry-tls.so-pin", "token.pin"):
        assert ((station / "secrets" / name).stat().st_mode & 0o777) == 0o600


def test_the_private_key_is_not_extractable_and_in_no_file(station: Path, ca_home: Path) -> None:
    key = json.loads(juki(station, "station", "enroll-registry", "--json").stdout)["key"]
    assert key == {"key_type": "EC", "bits": 256, "sensitive": True, "extractable": False,
                   "always_sensitive": True, "never_extractable": True}
    # the registry operator's home: a SQLite registry of its own, not the suite's JUKI_DB
    ca = json.loads(juki(ca_home, "hsm", "status", "--json", env={"JUKI_DB": ""}).stdout)
    assert any(k["role"] == "registry-station-ca" and not k["extractable"] for k in ca["keys"])
    for root in (station, ca_home):
        for path in root.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert b"PRIVATE KEY" not in data, path
                assert b"BEGIN EC PARAMETERS" not in data, path


def test_a_station_without_a_certificate_is_refused(cluster: Cluster, tmp_path: Path) -> None:
    home = make_home(tmp_path / "bare", "tls-a1-bare", cluster.station_url())
    refused = juki(home, "db", "upgrade", check=None)
    assert refused.returncode != 0
    assert "certificate" in refused.stderr, refused.stderr


def _database_of_its_own(cluster: Cluster, name: str) -> str:
    """Another registry database on the cluster, migrated; its owner URL (the other CA's
    registry: the real one refuses a log signer its own station CA did not issue)."""
    import psycopg

    from tools.registry import Registry

    with psycopg.connect(cluster.superuser_url("postgres"), autocommit=True) as db:
        db.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        db.execute(f"CREATE DATABASE {name} OWNER juki_owner")
    url = cluster.owner_url().replace(f"/{DATABASE}?", f"/{name}?", 1)
    Registry(url).close()
    return url


def test_a_certificate_from_another_ca_is_refused(cluster: Cluster, station: Path,
                                                  tmp_path: Path) -> None:
    other_ca = tmp_path / "other-ca"
    juki(other_ca, "registry", "init-ca", "--ca-home", str(other_ca))
    csr = station / "registry-tls" / "station.csr"
    juki(station, "station", "enroll-registry", "--json")  # the same key: a CSR again
    forged = tmp_path / "forged.pem"
    juki(station, "registry", "issue-station", str(csr), "--ca-home", str(other_ca),
         "--admin-db", _database_of_its_own(cluster, "forger"), "--out", str(forged))
    juki(station, "station", "enroll-registry", "--install", str(forged))
    try:
        refused = juki(station, "db", "upgrade", check=None)
        assert refused.returncode != 0
        assert "unknown ca" in refused.stderr, refused.stderr  # the server's TLS alert
    finally:  # the bundle the real station CA issued (the fixture's)
        juki(station, "station", "enroll-registry", "--install", str(station / "issued.pem"))
    assert juki(station, "db", "upgrade", "--json").returncode == 0


def test_a_revoked_station_is_refused_at_its_next_connection(cluster: Cluster, ca_home: Path,
                                                             station: Path) -> None:
    before = int(json.loads(juki(ca_home, "registry", "crl", "--ca-home", str(ca_home),
                                 "--out", str(cluster.crl), "--json").stdout)["number"])
    assert juki(station, "db", "upgrade", "--json").returncode == 0
    done = json.loads(juki(ca_home, "registry", "revoke-station", STATION_ID, "--ca-home",
                           str(ca_home), "--admin-db", cluster.owner_url(), "--crl-out",
                           str(cluster.crl), "--json").stdout)
    assert done["number"] > before and len(done["serials"]) == 1 and done["revoked"] >= 1
    refused = juki(station, "db", "upgrade", check=None)
    assert refused.returncode != 0
    assert "certificate revoked" in refused.stderr, refused.stderr  # the CRL, in the handshake



def _csr_key(path: Path) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    return x509.load_pem_x509_csr(path.read_bytes()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_enrolling_again_keeps_the_key_and_a_new_key_waits_for_its_certificate(
        cluster: Cluster, ca_home: Path, station: Path, tmp_path: Path) -> None:
    home = make_home(tmp_path / "st2", "tls-a1-st2", cluster.station_url())
    first = Path(json.loads(juki(home, "station", "enroll-registry", "--json").stdout)["csr"])
    key_one = _csr_key(first)
    juki(home, "station", "enroll-registry", "--json")
    assert _csr_key(first) == key_one  # asked again: the same key, not a silent replacement

    def issue(name: str) -> Path:
        out = tmp_path / name
        juki(home, "registry", "issue-station", str(first), "--ca-home", str(ca_home),
             "--admin-db", cluster.owner_url(), "--out", str(out))
        return out

    one = issue("one.pem")
    juki(home, "station", "enroll-registry", "--install", str(one))
    assert juki(home, "db", "upgrade", "--json").returncode == 0
    renewed = json.loads(juki(home, "station", "enroll-registry", "--new-key", "--json").stdout)
    assert renewed["key_label"].endswith("/v2") and _csr_key(first) != key_one
    assert juki(home, "db", "upgrade", "--json").returncode == 0  # v1 and its certificate still
    # a certificate for another key (the first station's) is not installed here
    wrong = juki(home, "station", "enroll-registry", "--install", str(station / "issued.pem"),
                 check=None)
    assert wrong.returncode != 0 and "not for this station's TLS key" in wrong.stderr
    two = issue("two.pem")
    juki(home, "station", "enroll-registry", "--install", str(two))
    enrolment = json.loads((home / "registry-tls" / "enrolment.json").read_text())
    assert enrolment["key_version"] == 2 and "pending_version" not in enrolment
    assert juki(home, "db", "upgrade", "--json").returncode == 0


EXPIRED_CRL = """
import datetime as dt, sys
from pathlib import Path
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from tools.cli.registry_stations import _ca_token
from tools.pki.station_ca import _ca
signer, ca = _ca(_ca_token(Path(sys.argv[1])))
now = dt.datetime.now(dt.UTC)
crl = (x509.CertificateRevocationListBuilder().issuer_name(ca.subject)
       .last_update(now - dt.timedelta(days=31)).next_update(now - dt.timedelta(days=1))
       .add_extension(x509.CRLNumber(10 ** 6), critical=False).sign(signer, hashes.SHA256()))
Path(sys.argv[2]).write_bytes(crl.public_bytes(serialization.Encoding.PEM))
"""


def _reload(cluster: Cluster) -> None:
    import time

    import psycopg

    with psycopg.connect(cluster.superuser_url(), autocommit=True) as db:
        db.execute("SELECT pg_reload_conf()")
    time.sleep(1)  # the postmaster rereads its files on SIGHUP, asynchronously


def test_a_crl_past_its_next_update_shuts_every_station_out_until_rewritten(
        cluster: Cluster, ca_home: Path, tmp_path: Path) -> None:
    """What docs/deployment.md warns of: rewrite the CRL (`juki registry crl`) and reload
    before its nextUpdate, or the server refuses every station."""
    home = make_home(tmp_path / "st3", "tls-a1-st3", cluster.station_url())
    csr = json.loads(juki(home, "station", "enroll-registry", "--json").stdout)["csr"]
    juki(home, "registry", "issue-station", csr, "--ca-home", str(ca_home), "--admin-db",
         cluster.owner_url(), "--out", str(tmp_path / "b.pem"))
    juki(home, "station", "enroll-registry", "--install", str(tmp_path / "b.pem"))
    assert juki(home, "db", "upgrade", "--json").returncode == 0
    expired = subprocess.run([sys.executable, "-c", EXPIRED_CRL, str(ca_home), str(cluster.crl)],
                             cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
                             env={k: v for k, v in os.environ.items() if not k.startswith("PKCS11_")}
                             | {"JUKI_DB": ""})
    assert expired.returncode == 0, expired.stderr
    try:
        _reload(cluster)
        refused = juki(home, "db", "upgrade", check=None)
        assert refused.returncode != 0 and "certificate expired" in refused.stderr, refused.stderr
    finally:
        juki(ca_home, "registry", "crl", "--ca-home", str(ca_home), "--out", str(cluster.crl))
        _reload(cluster)
    assert juki(home, "db", "upgrade", "--json").returncode == 0
