"""A private PostgreSQL cluster in the TLS-and-roles configuration, for the tests of the
station's own TLS identity (tests/integration/test_registry_tls_pg.py): its own data
directory under /tmp and its own port, started as ``postgres`` and stopped by its PID.

Like `.ci/postgres-up` (docs/deployment.md): TLS on with a server CA the stations pin,
``ssl_ca_file`` = the station CA (`juki registry init-ca`, its key in the registry
operator's token), ``ssl_crl_file`` = its CRL (`juki registry crl`); pg_hba holds only
``local`` peer (root as the superuser or as ``juki_owner``) and ``hostssl ... cert
clientcert=verify-full`` with the station-CN map; roles juki_owner, juki_admin,
juki_stations; one database ``reg`` owned by juki_owner and migrated as the owner.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PG_BIN = Path("/usr/lib/postgresql/15/bin")
DATABASE = "reg"


@dataclass
class Cluster:
    root: Path
    port: int
    pid: int

    @property
    def server_ca(self) -> Path:
        return self.root / "server-ca.pem"

    @property
    def station_ca(self) -> Path:
        return self.root / "station-ca.pem"

    @property
    def crl(self) -> Path:
        return self.root / "station-crl.pem"

    def superuser_url(self, database: str = DATABASE) -> str:
        return f"postgresql:///{database}?host={self.root}&port={self.port}&user=postgres"

    def owner_url(self) -> str:
        return f"postgresql:///{DATABASE}?host={self.root}&port={self.port}&user=juki_owner"

    def station_url(self) -> str:
        """What a station's `[registry] url` says: TCP, verify-full against the server CA."""
        return (f"postgresql://localhost:{self.port}/{DATABASE}?sslmode=verify-full"
                f"&sslrootcert={self.server_ca}&connect_timeout=5")

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGINT)  # fast shutdown
        for _ in range(100):
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"the test cluster (postmaster {self.pid}) did not stop")
        shutil.rmtree(self.root, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_certificates(root: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test registry server CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (root / "server-ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (root / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file = root / "server.key"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)


def _as_postgres(*argv: str) -> None:
    subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=True,
                   capture_output=True, timeout=120)


def start_cluster(ca_home: Path, juki) -> Cluster:  # type: ignore[no-untyped-def]
    """``juki(home, *args)`` runs the CLI (tests.conftest.juki)."""
    root = Path(tempfile.mkdtemp(prefix="juki-a1-pg-", dir="/tmp"))
    root.chmod(0o755)
    _server_certificates(root)
    juki(ca_home, "registry", "init-ca", "--ca-home", str(ca_home), "--out", str(root / "station-ca.pem"))
    juki(ca_home, "registry", "crl", "--ca-home", str(ca_home), "--out", str(root / "station-crl.pem"))
    shutil.chown(root, "postgres")
    for name in ("server.key", "server.pem"):
        shutil.chown(root / name, "postgres")
    data = root / "data"
    _as_postgres(str(PG_BIN / "initdb"), "-D", str(data), "-A", "reject", "-U", "postgres")
    port = _free_port()
    (data / "pg_hba.conf").write_text(
        "local all all peer map=local\n"
        "hostssl all all 127.0.0.1/32 cert clientcert=verify-full map=juki-stations\n"
        "hostssl all all ::1/128 cert clientcert=verify-full map=juki-stations\n")
    (data / "pg_ident.conf").write_text(
        "local postgres postgres\nlocal root postgres\nlocal root juki_owner\n"
        "juki-stations /^(juki_station_[a-z0-9_]+)$ \\1\n")
    with (data / "postgresql.conf").open("a") as conf:
        conf.write(f"port = {port}\nlisten_addresses = 'localhost'\n"
                   f"unix_socket_directories = '{root}'\nssl = on\n"
                   f"ssl_cert_file = '{root}/server.pem'\nssl_key_file = '{root}/server.key'\n"
                   f"ssl_ca_file = '{root}/station-ca.pem'\nssl_crl_file = '{root}/station-crl.pem'\n"
                   "fsync = off\n")
    _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "start")
    pid = int((data / "postmaster.pid").read_text().split()[0])
    cluster = Cluster(root, port, pid)
    try:
        _roles_and_database(cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _roles_and_database(cluster: Cluster) -> None:
    import psycopg

    from tools.registry import Registry

    with psycopg.connect(cluster.superuser_url("postgres"), autocommit=True) as db:
        db.execute("CREATE ROLE juki_owner LOGIN CREATEROLE")
        db.execute("CREATE ROLE juki_admin NOLOGIN")
        db.execute("CREATE ROLE juki_stations NOLOGIN")
        db.execute(f"CREATE DATABASE {DATABASE} OWNER juki_owner")
    with psycopg.connect(cluster.superuser_url(), autocommit=True) as db:
        db.execute("GRANT EXECUTE ON FUNCTION pg_reload_conf() TO juki_owner")
    Registry(cluster.owner_url()).close()  # `juki db upgrade` as the owner
