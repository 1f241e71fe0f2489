"""Who the real registry server admits (.ci/postgres-up's configuration, docs/deployment.md):
only a station presenting a certificate from the station CA, not revoked, as the very role
its certificate names, over TLS. Each attack below tries one way around that and must be
refused by the server itself; the good station is admitted, so the refusals are not an
unreachable server."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tools.registry.roles import station_role

from .registry_server import (
    OPERATOR,
    RegistryServer,
    StationCredentials,
    fresh_tls_database,
    issue_station,
    key_and_csr,
    psql_refusal,
    registry_server,
    revoke_station,
)


@pytest.fixture(scope="module")
def server() -> RegistryServer:
    return registry_server()


@pytest.fixture(scope="module")
def database(server: RegistryServer) -> str:
    return fresh_tls_database(server)


@pytest.fixture
def enrolled(server: RegistryServer, database: str, tmp_path: Path) -> StationCredentials:
    return issue_station(server, tmp_path, f"conn-{secrets.token_hex(4)}")


def _connect(server: RegistryServer, **params: str) -> psycopg.Connection:
    return psycopg.connect(server.station_conninfo(**params), autocommit=True)


def _whoami(server: RegistryServer, station: StationCredentials) -> tuple[str, bool, str]:
    with _connect(server, **station.conninfo_params()) as db:
        row = db.execute("SELECT current_user, ssl, client_dn FROM pg_stat_ssl "
                         "WHERE pid = pg_backend_pid()").fetchone()
    assert row is not None
    return row[0], row[1], row[2]


def _refused(server: RegistryServer, **params: str) -> str:
    with pytest.raises(psycopg.OperationalError) as refused:
        _connect(server, **params).close()
    return str(refused.value)


def test_a_station_with_its_certificate_is_its_own_role_over_tls(
        server: RegistryServer, enrolled: StationCredentials) -> None:
    user, ssl, client_dn = _whoami(server, enrolled)
    assert (user, ssl, client_dn) == (enrolled.role, True, f"/CN={enrolled.role}")


def test_no_client_certificate_is_refused(server: RegistryServer, enrolled: StationCredentials) -> None:
    # the role exists and may log in: only the missing certificate stands in the way
    message = _refused(server, user=enrolled.role, sslcert="/nonexistent", sslkey="/nonexistent")
    assert "requires a valid client certificate" in message


def _other_ca_certificate(directory: Path, role: str) -> tuple[Path, Path]:
    """A certificate for ``role`` from a throwaway CA of the attacker's own."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "juki station CA")])  # same name
    key, key_path, _ = key_and_csr(directory, role)
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, role)]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_path = directory / f"{role}-other-ca.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def test_a_certificate_from_another_ca_is_refused(server: RegistryServer, enrolled: StationCredentials,
                                                   tmp_path: Path) -> None:
    attacker = tmp_path / "attacker"
    attacker.mkdir()
    cert, key = _other_ca_certificate(attacker, enrolled.role)
    message = _refused(server, user=enrolled.role, sslcert=str(cert), sslkey=str(key))
    assert "unknown ca" in message
    assert _whoami(server, enrolled)[0] == enrolled.role  # the real one still gets in


def test_a_revoked_station_is_refused_at_its_next_connection(
        server: RegistryServer, enrolled: StationCredentials, tmp_path: Path) -> None:
    assert _whoami(server, enrolled)[0] == enrolled.role
    revoke_station(server, enrolled.station_id, tmp_path)
    message = _refused(server, **enrolled.conninfo_params())
    assert "certificate revoked" in message
    with psycopg.connect(server.owner_url(), autocommit=True) as db:  # and its role is shut
        can_login = db.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s",
                               (enrolled.role,)).fetchone()
    assert can_login == (False,)


def test_another_stations_certificate_does_not_open_its_role(
        server: RegistryServer, enrolled: StationCredentials, tmp_path: Path) -> None:
    other = issue_station(server, tmp_path, f"conn-{secrets.token_hex(4)}")
    message = _refused(server, **enrolled.conninfo_params(user=other.role))
    assert "certificate authentication failed" in message
    for role in ("juki_owner", "juki_admin", "postgres"):  # nor an administrative role
        message = _refused(server, **enrolled.conninfo_params(user=role))
        assert "certificate authentication failed" in message
    assert _whoami(server, other)[0] == other.role


def test_plain_tcp_and_passwords_are_refused(server: RegistryServer, enrolled: StationCredentials) -> None:
    base = "host=127.0.0.1 dbname=juki_tls_test connect_timeout=5"
    for user in (enrolled.role, "juki_owner", "postgres"):
        message = psql_refusal(f"{base} user={user} sslmode=disable", env={"PGPASSWORD": "guess"})
        assert "no pg_hba.conf entry" in message and "no encryption" in message
        # TLS without a certificate: the server never asks for the password at all
        message = psql_refusal(f"{base} user={user} sslmode=require", env={"PGPASSWORD": "guess"})
        assert "requires a valid client certificate" in message
    with psycopg.connect(server.superuser_url(), autocommit=True) as db:
        rules = db.execute("SELECT type, auth_method FROM pg_hba_file_rules").fetchall()
    assert set(rules) == {("local", "peer"), ("hostssl", "cert")}


def test_the_station_ca_issues_no_administrative_role(server: RegistryServer, tmp_path: Path) -> None:
    from ..conftest import juki

    for name in ("juki_owner", "postgres", "juki_station_x;drop"):
        csr_named = tmp_path / f"bad-{secrets.token_hex(2)}.csr"
        csr_named.write_bytes(_csr_for(tmp_path, name))
        refused = juki(tmp_path, "registry", "issue-station", str(csr_named), "--ca-home",
                       str(server.ca_home), "--admin-db", server.owner_url(),
                       "--out", str(tmp_path / "never.pem"), check=None, env={"JUKI_DB": ""})
        assert refused.returncode != 0 and not (tmp_path / "never.pem").exists()


def test_a_refused_validity_leaves_no_role_behind(server: RegistryServer, tmp_path: Path) -> None:
    """`issue-station --days 0` is refused before the role and its binding are made."""
    from ..conftest import juki

    station_id = f"days-{secrets.token_hex(3)}"
    role = station_role(station_id)
    csr = tmp_path / "days.csr"
    csr.write_bytes(_csr_for(tmp_path, role))
    refused = juki(tmp_path, "registry", "issue-station", str(csr), "--ca-home",
                   str(server.ca_home), "--admin-db", server.owner_url(), "--station-id",
                   station_id, "--days", "0", "--out", str(tmp_path / "never.pem"),
                   check=None, env=OPERATOR)
    assert refused.returncode == 2 and "days" in refused.stderr
    with psycopg.connect(server.superuser_url(), autocommit=True) as db:
        assert db.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s",
                          (role,)).fetchone()[0] == 0
    with psycopg.connect(server.owner_url(), autocommit=True) as db:  # nor a log signer
        assert db.execute("SELECT count(*) FROM log_signers WHERE station_id = %s",
                          (station_id,)).fetchone()[0] == 0
    assert not (tmp_path / "never.pem").exists()


def _csr_for(directory: Path, common_name: str) -> bytes:
    """A well-formed CSR (with the log-signing key the CA requires) for ``common_name``."""
    return key_and_csr(directory, common_name)[2].read_bytes()


@pytest.fixture(scope="module", autouse=True)
def _no_leftover_roles(server: RegistryServer) -> Iterator[None]:
    """The throwaway stations' roles are dropped afterwards (roles are cluster-wide)."""
    yield
    with psycopg.connect(server.superuser_url(), autocommit=True) as db:
        db.execute("DROP DATABASE IF EXISTS juki_tls_test WITH (FORCE)")
        for (role,) in db.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE 'juki_station_conn_%'"
                                  ).fetchall():
            db.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_a_log_signer_row_laid_beforehand_for_the_stations_key_is_refused(
        server: RegistryServer, tmp_path: Path) -> None:
    """Whoever can write log_signers (the owner) lays a certificate from a CA of its own
    for the key a station is about to present: issue-station refuses the request before
    making the role (storing its own certificate would have been a silent no-op, leaving
    the station's appends unprovable to every other station)."""
    from tools.pki.station_ca import check_request
    from tools.registry import log_signers

    from ..conftest import juki

    station_id = f"conn-{secrets.token_hex(4)}"
    role = station_role(station_id)
    _, _, csr_path = key_and_csr(tmp_path, role)
    log_key = check_request(csr_path.read_bytes(), station_id).log_key
    rogue_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Juki Registry Station CA v1")])
    now = dt.datetime.now(dt.UTC)
    rogue = (x509.CertificateBuilder()
             .subject_name(x509.Name([x509.NameAttribute(NameOID.USER_ID, station_id)]))
             .issuer_name(name).public_key(ed25519.Ed25519PublicKey.from_public_bytes(log_key))
             .serial_number(x509.random_serial_number())
             .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
             .add_extension(x509.ExtendedKeyUsage([log_signers.LOG_SIGNING_EKU]), critical=False)
             .sign(rogue_key, hashes.SHA256()))
    with psycopg.connect(server.owner_url(), autocommit=True) as db:
        db.execute("INSERT INTO log_signers (station_id, key_id, certificate) VALUES (%s, %s, %s)",
                   (station_id, log_signers.key_id(log_key),
                    rogue.public_bytes(serialization.Encoding.DER)))
    refused = juki(tmp_path, "registry", "issue-station", str(csr_path), "--ca-home",
                   str(server.ca_home), "--admin-db", server.owner_url(), "--station-id",
                   station_id, "--out", str(tmp_path / "never.pem"), check=None, env=OPERATOR)
    assert refused.returncode == 2 and "this station CA did not issue" in refused.stderr
    assert not (tmp_path / "never.pem").exists()
    with psycopg.connect(server.superuser_url(), autocommit=True) as db:
        assert db.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s",
                          (role,)).fetchone()[0] == 0
