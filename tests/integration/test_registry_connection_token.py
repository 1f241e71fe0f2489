"""A station on the real registry server (.ci/postgres-up) as in production: its TLS key
made in its own token (never a file), its certificate from `juki registry issue-station`,
installed with `juki station enroll-registry --install`; then the station's own commands
reach the registry as its role. No readers or cards: a SoftHSM token only."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from cryptography import x509

from tools.registry import Registry, log_signers
from tools.registry.roles import station_role
from tools.registry.tls import station_ca_anchors
from tools.rig.rig import Rig
from tools.station.home import StationHome

from ..conftest import ROOT, juki
from .registry_server import OPERATOR, TLS_TEST_DB, RegistryServer, fresh_tls_database, registry_server
from .test_log_signer_enrolment import note_keys


@pytest.fixture(scope="module")
def server() -> Iterator[RegistryServer]:
    server = registry_server()
    fresh_tls_database(server)
    yield server
    with psycopg.connect(server.superuser_url(), autocommit=True) as db:
        db.execute(f"DROP DATABASE IF EXISTS {TLS_TEST_DB} WITH (FORCE)")
        for (role,) in db.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE "
                                  "'juki_station_token_%'").fetchall():
            db.execute(f'DROP ROLE IF EXISTS "{role}"')


def enrolled_home(server: RegistryServer, root: Path) -> tuple[Path, str]:
    """A station home with a token of its own, enrolled through the CLI only."""
    station_id = f"token-{secrets.token_hex(4)}"
    home = StationHome(root)
    url = (f"postgresql://localhost/{TLS_TEST_DB}?sslmode=verify-full"
           f"&sslrootcert={server.server_ca}")
    home.write_settings({"station": {"id": station_id, "mode": "open"}, "registry": {"url": url}})
    Rig(home).ensure_token()
    asked = json.loads(juki(root, "station", "enroll-registry", "--json").stdout)
    assert asked["role"] == station_role(station_id)
    issued = root.parent / f"{station_id}.pem"
    juki(root, "registry", "issue-station", asked["csr"], "--ca-home", str(server.ca_home),
         "--admin-db", server.owner_url(), "--out", str(issued), "--json", env=OPERATOR)
    juki(root, "station", "enroll-registry", "--install", str(issued), "--json")
    return root, station_id


def _rows(server: RegistryServer) -> int:
    with psycopg.connect(server.owner_url(), autocommit=True) as db:
        return sum(int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
                   for table in ("card_events", "operator_events", "provision_log"))


def test_an_enrolled_station_reaches_the_registry_with_its_token_key(
        server: RegistryServer, tmp_path: Path) -> None:
    home, _ = enrolled_home(server, tmp_path / "station")
    upgraded = json.loads(juki(home, "db", "upgrade", "--json").stdout)
    assert upgraded["backend"] == "postgresql" and upgraded["schema_version"] >= 8
    no_key_file = [p for p in home.rglob("*") if p.is_file()
                   and b"PRIVATE KEY" in p.read_bytes()]
    assert no_key_file == []


def test_a_station_with_all_its_keys_writes_to_the_registry(server: RegistryServer,
                                                            tmp_path: Path) -> None:
    """`hsm init` makes every station key (RSA, EC, Ed25519 among them) in the same token,
    then records their creation in the registry over the station's TLS connection.
    (libp11 0.4.12 could not enumerate the token's private keys once an Ed25519 key was
    among them: "object not found" for the TLS key.)"""
    home, _ = enrolled_home(server, tmp_path / "station")
    before = _rows(server)
    juki(home, "hsm", "init")
    assert _rows(server) > before


def test_the_same_home_without_its_enrolment_is_refused(server: RegistryServer, tmp_path: Path) -> None:
    home, _ = enrolled_home(server, tmp_path / "station")
    juki(home, "db", "upgrade")
    for name in ("enrolment.json", "station.pem"):
        (home / "registry-tls" / name).rename(home / "registry-tls" / f"{name}.away")
    refused = juki(home, "db", "upgrade", check=None)
    assert refused.returncode != 0 and "certificate" in refused.stderr


def test_the_stations_log_key_is_certified_in_the_registry_and_trusted_by_its_ca(
        server: RegistryServer, tmp_path: Path) -> None:
    """After enrolment (before `hsm init`: the enrolment made the note key), the registry's
    log_signers holds the station's certificate for the key in its token; a verifier
    holding the station CA (the one the station installed) trusts it, and nothing else."""
    home, station_id = enrolled_home(server, tmp_path / "station")
    (key,) = note_keys(home).values()
    anchors = station_ca_anchors(home)
    assert len(anchors) == 1 and anchors[0].extensions.get_extension_for_class(
        x509.BasicConstraints).value.ca
    log_cert = x509.load_pem_x509_certificate((home / "registry-tls" / "log-signer.pem").read_bytes())
    assert log_cert.public_key().public_bytes_raw() == key  # type: ignore[union-attr]
    tls_file = (home / "registry-tls" / "station.pem").read_bytes()
    assert len(x509.load_pem_x509_certificates(tls_file)) == 1  # libpq sends this one alone
    enrolment = json.loads((home / "registry-tls" / "enrolment.json").read_text())
    assert enrolment["log_key_id"] == log_signers.key_id(key)
    with psycopg.connect(server.owner_url(), autocommit=True) as db:
        rows = db.execute("SELECT key_id FROM log_signers WHERE station_id = %s",
                          (station_id,)).fetchall()
        assert rows == [(log_signers.key_id(key),)]
        owner = Registry(server.owner_url())
        try:
            trusted = log_signers.trusted(owner.connection(), anchors)
            assert trusted[(station_id, log_signers.key_id(key))].public == key
            assert log_signers.trusted(owner.connection(), []) == {}  # no anchor, no trust
        finally:
            owner.close()
    # hsm init keeps the key the enrolment made (no second version to certify)
    juki(home, "hsm", "init")
    assert note_keys(home) == {1: key}


def test_the_registry_operators_event_is_signed_by_a_key_its_station_ca_certified_once(
        server: RegistryServer, tmp_path: Path) -> None:
    """`registry recipients` (the CA home's event) certifies the CA home's log key in
    log_signers first, from its own station CA, once: a station holding that CA (the one
    it installed at enrolment) trusts the key the event's append is signed with."""
    home, _ = enrolled_home(server, tmp_path / "station")
    ca_home = str(server.ca_home)
    table = ROOT / "fixtures" / "recipients.toml"
    for _ in range(2):
        juki(server.ca_home, "registry", "recipients", "--load", str(table),
             "--admin-db", server.owner_url(), "--ca-home", ca_home, env=OPERATOR)
    with psycopg.connect(server.owner_url(), autocommit=True) as db:
        stations = [r[0] for r in db.execute("SELECT station_id FROM registry_stations")]
        rows = db.execute("SELECT station_id, key_id FROM log_signers WHERE station_id <> "
                          "ALL(%s)", (stations,)).fetchall()
        assert len(rows) == 1  # the operator's: once, however often the command runs
        signed = db.execute("SELECT DISTINCT station_id, key_id FROM log_attestations "
                            "WHERE station_id = %s", (rows[0][0],)).fetchall()
    assert signed == rows  # the event's append, signed by that key
    owner = Registry(server.owner_url())
    try:
        assert tuple(rows[0]) in log_signers.trusted(owner.connection(), station_ca_anchors(home))
    finally:
        owner.close()
