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

from tools.registry.roles import station_role
from tools.rig.rig import Rig
from tools.station.home import StationHome

from ..conftest import juki
from .registry_server import OPERATOR, TLS_TEST_DB, RegistryServer, fresh_tls_database, registry_server


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
