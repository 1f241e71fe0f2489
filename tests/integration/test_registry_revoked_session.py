"""Attack (issue 14 security review): a station is revoked because it is compromised,
but its connection opened before the revocation stays open (NOLOGIN and the CRL stop
only new connections). Through it the attacker would keep changing cards, residents'
identities, operators... `juki registry revoke-station` must end the station's open
sessions too; another station's session is left alone."""

from __future__ import annotations

import secrets
from pathlib import Path

import psycopg
import pytest

from .registry_server import (
    RegistryServer,
    StationCredentials,
    fresh_tls_database,
    issue_station,
    registry_server,
    revoke_station,
)


@pytest.fixture(scope="module")
def server() -> RegistryServer:
    found = registry_server()
    fresh_tls_database(found)
    return found


def _open(server: RegistryServer, station: StationCredentials) -> psycopg.Connection:
    db = psycopg.connect(server.station_conninfo(**station.conninfo_params()), autocommit=True)
    assert db.execute("SELECT current_user").fetchone() == (station.role,)
    return db


def test_revoking_a_station_ends_its_open_sessions(server: RegistryServer, tmp_path: Path) -> None:
    victim = issue_station(server, tmp_path, f"rev-{secrets.token_hex(4)}")
    bystander = issue_station(server, tmp_path, f"rev-{secrets.token_hex(4)}")
    open_before, other = _open(server, victim), _open(server, bystander)
    try:
        revoke_station(server, victim.station_id, tmp_path)
        with pytest.raises(psycopg.OperationalError):
            open_before.execute("UPDATE resident_identity SET name = 'x' WHERE false")
        assert other.execute("SELECT current_user").fetchone() == (bystander.role,)
    finally:
        open_before.close()
        other.close()
