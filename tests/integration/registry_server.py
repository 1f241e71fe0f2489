"""The real registry server as `.ci/postgres-up` configures it (TLS only, station roles
proven by client certificates, docs/deployment.md), for the connection tests: a fresh
database of their own on it (``juki_tls_test``, one of the databases pg_hba admits over
TLS), station certificates issued by the station CA through the registry operator's
commands, and connections made the way libpq makes them.

The keys here are files on purpose: the server sees only the certificate chain and the
handshake signature, so where the key lives (a file here, the station's token in the
suite's PostgreSQL pass) does not change what these tests prove about the server."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from tools.registry import log_signers
from tools.registry.roles import station_role

from ..conftest import juki

TLS_TEST_DB = "juki_tls_test"
OPERATOR = {"JUKI_DB": ""}  # the registry operator's commands open no station registry
SOCKET = "/var/run/postgresql"


@dataclass(frozen=True)
class RegistryServer:
    server_ca: Path  # what stations pin as sslrootcert
    ca_home: Path    # the registry operator's home: the station CA's key in its token
    crl: Path        # ssl_crl_file

    def owner_url(self, database: str = TLS_TEST_DB) -> str:
        """juki_owner over the local socket (peer: the registry operator's OS account)."""
        return f"postgresql:///{database}?host={SOCKET}&user=juki_owner"

    def superuser_url(self, database: str = "postgres") -> str:
        return f"postgresql:///{database}?host={SOCKET}"

    def station_conninfo(self, database: str = TLS_TEST_DB, **extra: str) -> str:
        """A TCP connection to localhost, server verified against the pinned CA."""
        params = {"host": "localhost", "dbname": database, "sslmode": "verify-full",
                  "sslrootcert": str(self.server_ca), "connect_timeout": "5"} | extra
        return " ".join(f"{k}='{v}'" for k, v in params.items())


def registry_server() -> RegistryServer:
    """The server `.ci/postgres-up` described (its `export` lines). Outside CI without
    them: skipped; in CI their absence is a failure."""
    names = ("JUKI_REGISTRY_SERVER_CA", "JUKI_REGISTRY_CA_HOME", "JUKI_REGISTRY_CRL")
    values = [os.environ.get(name) for name in names]
    if not all(values):
        if os.environ.get("CI") == "true":
            raise RuntimeError(f"{', '.join(names)} not set: run `eval \"$(bash .ci/postgres-up)\"`")
        pytest.skip("the TLS registry server is not configured (.ci/postgres-up)")
    server_ca, ca_home, crl = (Path(v) for v in values if v)
    return RegistryServer(server_ca, ca_home, crl)


def fresh_tls_database(server: RegistryServer) -> str:
    """``juki_tls_test`` recreated, owned by juki_owner and migrated as the owner (as
    `juki db upgrade` does in production); its owner URL."""
    import psycopg

    from tools.registry import Registry

    with psycopg.connect(server.superuser_url(), autocommit=True) as db:
        db.execute(f"DROP DATABASE IF EXISTS {TLS_TEST_DB} WITH (FORCE)")
        db.execute(f"CREATE DATABASE {TLS_TEST_DB} OWNER juki_owner")
    Registry(server.owner_url()).close()
    return server.owner_url()


@dataclass(frozen=True)
class StationCredentials:
    station_id: str
    role: str
    cert: Path
    key: Path

    def conninfo_params(self, **extra: str) -> dict[str, str]:
        return {"user": self.role, "sslcert": str(self.cert), "sslkey": str(self.key)} | extra


def key_and_csr(directory: Path, common_name: str) -> tuple[ec.EllipticCurvePrivateKey, Path, Path]:
    """An EC P-256 key in a 0600 file and a CSR for ``common_name``, carrying a log-signing
    key (Ed25519, thrown away: these tests append nothing) as the station CA requires."""
    key = ec.generate_private_key(ec.SECP256R1())
    key_path = directory / f"{common_name}.key"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    log_key = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
           .add_extension(log_signers.request_extension(log_key), critical=False)
           .sign(key, hashes.SHA256()))
    csr_path = directory / f"{common_name}.csr"
    csr_path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    return key, key_path, csr_path


def issue_station(server: RegistryServer, directory: Path, station_id: str) -> StationCredentials:
    """Enrol ``station_id`` as the registry operator does: `juki registry issue-station`
    (the station's role and binding on the admin connection, its certificate from the
    station CA in the operator's token)."""
    role = station_role(station_id)
    _, key_path, csr_path = key_and_csr(directory, role)
    bundle = directory / f"{role}-bundle.pem"
    juki(directory, "registry", "issue-station", str(csr_path), "--ca-home", str(server.ca_home),
         "--admin-db", server.owner_url(), "--out", str(bundle), "--station-id", station_id,
         "--json", env=OPERATOR)
    cert_path = directory / f"{role}.pem"  # the TLS certificate (the bundle's first), alone
    tls = x509.load_pem_x509_certificates(bundle.read_bytes())[0]
    cert_path.write_bytes(tls.public_bytes(serialization.Encoding.PEM))
    return StationCredentials(station_id, role, cert_path, key_path)


def revoke_station(server: RegistryServer, station_id: str, directory: Path) -> None:
    juki(directory, "registry", "revoke-station", station_id, "--ca-home", str(server.ca_home),
         "--admin-db", server.owner_url(), "--crl-out", str(server.crl), "--json", env=OPERATOR)


def psql_refusal(conninfo: str, env: dict[str, str] | None = None) -> str:
    """Try ``conninfo`` with psql (libpq as any client has it); the server's refusal text.
    Fails the test when the connection is admitted."""
    result = subprocess.run(["psql", conninfo, "-tAc", "SELECT current_user"], capture_output=True,
                            text=True, check=False, timeout=30,
                            env={k: v for k, v in os.environ.items() if not k.startswith("PG")} | (env or {}))
    assert result.returncode != 0, f"admitted: {result.stdout!r}"
    return result.stderr

