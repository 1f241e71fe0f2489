"""The station's TLS identity to a shared registry, without a server (issue 14, part 1):
what the station CA accepts as a station's request (each forgery refused), what a station
adds to its registry URL (and the URLs it refuses), the log's name independent of who
connects, and where the registry-operator and enrolment commands may run. The server's
side is tests/integration/test_registry_tls_pg.py."""

from __future__ import annotations

import contextvars
from pathlib import Path

import click
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from hsm.config import TokenConfig
from tools.audit.anchors import _where
from tools.errors import PermissionDeniedError, RequestError
from tools.pki.station_ca import check_request
from tools.registry import log_signers
from tools.registry.records import RegistryError
from tools.registry.tls import ClientIdentity, engine_config
from tools.service.context import Station
from tools.service.protocol import is_local_command
from tools.station.caller import CURRENT_CALLER, Caller
from tools.station.scopes import COMMAND_SCOPES, LOCAL_ONLY, REGISTRY_OPERATOR_COMMANDS, SESSION_FREE

STATION_ID = "city-hall-3"
ROLE = "juki_station_city_hall_3"


def csr(cn: str | None = ROLE, uid: str | None = STATION_ID, key=None,  # type: ignore[no-untyped-def]
        log_extension: x509.ExtensionType | None = None, with_log_key: bool = True) -> bytes:
    key = key or ec.generate_private_key(ec.SECP256R1())
    names = ([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else []) + (
        [x509.NameAttribute(NameOID.USER_ID, uid)] if uid else [])
    request = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(names))
    if with_log_key:  # the station's log-signing key, as `station enroll-registry` adds it
        request = request.add_extension(log_extension or log_signers.request_extension(
            ed25519.Ed25519PrivateKey.generate().public_key().public_bytes_raw()),
            critical=False)
    return request.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def test_a_stations_request_names_its_role_and_its_station_id() -> None:
    request = check_request(csr())
    assert (request.station_id, request.role) == (STATION_ID, ROLE)
    assert isinstance(request.public_key.curve, ec.SECP256R1)


def test_a_request_whose_signature_does_not_verify_is_refused() -> None:
    der = bytearray(x509.load_pem_x509_csr(csr()).public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0x01  # inside the ECDSA signature
    forged = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(RequestError, match="signature"):
        check_request(forged)


@pytest.mark.parametrize(("cn", "uid", "why"), [
    ("juki_station_other_station", STATION_ID, "is not the role of station"),  # another's role
    (ROLE, "other-station", "is not the role of station"),  # another's id for this role
    ("juki_admin", STATION_ID, "not a station role"),  # an administrative role
    ("juki_owner", STATION_ID, "not a station role"),
    ("postgres", STATION_ID, "not a station role"),
    (ROLE, None, "UID"),  # no station id, none given
    (None, STATION_ID, "common name"),
])
def test_a_request_for_someone_else_is_refused(cn: str | None, uid: str | None, why: str) -> None:
    with pytest.raises(RequestError, match=why):
        check_request(csr(cn, uid))


def test_a_request_with_two_common_names_is_refused() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    names = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ROLE),
                       x509.NameAttribute(NameOID.COMMON_NAME, "juki_station_x"),
                       x509.NameAttribute(NameOID.USER_ID, STATION_ID)])
    pem = (x509.CertificateSigningRequestBuilder().subject_name(names)
           .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    with pytest.raises(RequestError, match="exactly one common name"):
        check_request(pem)


@pytest.mark.parametrize("key", [ec.generate_private_key(ec.SECP384R1()),
                                 rsa.generate_private_key(65537, 2048)])
def test_only_p256_station_keys_are_certified(key) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RequestError, match="P-256"):
        check_request(csr(key=key))


def test_the_operator_names_the_station_of_a_request_without_uid() -> None:
    assert check_request(csr(uid=None), STATION_ID).station_id == STATION_ID
    with pytest.raises(RequestError, match="is not the role of station"):
        check_request(csr(uid=None), "another-station")
    with pytest.raises(RequestError, match="names station"):
        check_request(csr(), "another-station")  # the CSR's UID and the operator disagree


def test_garbage_is_not_a_request() -> None:
    with pytest.raises(RequestError, match="not a PEM certificate request"):
        check_request(b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n")


def identity(tmp_path: Path) -> ClientIdentity:
    token = TokenConfig("/usr/lib/softhsm/libsofthsm2.so", "station-tls", tmp_path / "registry-tls.pin")
    return ClientIdentity(ROLE, tmp_path / "station.pem", tmp_path / "openssl.cnf", token, 2)


def test_the_station_adds_its_role_certificate_and_engine_key(tmp_path: Path) -> None:
    url = "postgresql://registry.example:5432/juki?sslmode=verify-full&sslrootcert=/etc/ca.pem"
    conninfo = identity(tmp_path).conninfo(url)
    assert f"user={ROLE}" in conninfo and "sslmode=verify-full" in conninfo
    assert f"sslcert={tmp_path / 'station.pem'}" in conninfo
    assert ("sslkey=pkcs11:pkcs11:token=station-tls;object=juki%2Fregistry-tls-client%2Fv2;"
            f"type=private;pin-source=file:{tmp_path / 'registry-tls.pin'}") in conninfo
    assert "pin-value" not in conninfo


@pytest.mark.parametrize("url", [
    "postgresql://registry.example/juki",  # no TLS asked for
    "postgresql://registry.example/juki?sslmode=require&sslrootcert=/etc/ca.pem",  # no host check
    "postgresql://registry.example/juki?sslmode=verify-ca&sslrootcert=/etc/ca.pem",
    "postgresql://registry.example/juki?sslmode=verify-full",  # which server CA?
])
def test_a_url_that_would_not_verify_the_server_is_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(RegistryError, match="must carry"):
        identity(tmp_path).conninfo(url)


def test_the_engine_config_keeps_the_engine_for_the_process_and_names_the_module() -> None:
    text = engine_config("/usr/lib/softhsm/libsofthsm2.so")
    assert "MODULE_PATH = /usr/lib/softhsm/libsofthsm2.so" in text and "init = 1" in text
    assert "engine_id = pkcs11" in text and "pkcs11.so" in text


def test_the_logs_name_is_the_database_not_who_connects() -> None:
    plain = _where("postgresql://localhost:5432/juki?application_name=x")
    for who in ("postgresql://juki_owner@localhost:5432/juki?application_name=x",
                "postgresql://u:secret@localhost:5432/juki?application_name=x&user=juki_owner",
                "postgresql://localhost:5432/juki?sslmode=verify-full&application_name=x"
                "&sslrootcert=/etc/ca.pem&sslcert=/h/station.pem&sslkey=pkcs11:pkcs11:token=t"):
        assert _where(who) == plain
    assert "secret" not in _where("postgresql://u:secret@localhost/juki")
    assert _where("postgresql://localhost:5432/other") != _where("postgresql://localhost:5432/juki")
    assert _where("postgresql:///juki_test?host=/var/run/postgresql") == \
        "postgresql:/juki_test?host=/var/run/postgresql"  # as before issue 14: same log name


def registry_leaf_commands() -> set[str]:
    from tools.cli.main import cli

    group = cli.commands["registry"]
    assert isinstance(group, click.Group)
    return {f"registry {name}" for name in group.commands}


def test_registry_operator_commands_need_no_session_and_run_only_locally() -> None:
    assert registry_leaf_commands() == set(REGISTRY_OPERATOR_COMMANDS)
    for command in REGISTRY_OPERATOR_COMMANDS | {"station enroll-registry"}:
        assert command in SESSION_FREE and command in LOCAL_ONLY
        assert command not in COMMAND_SCOPES
        assert is_local_command(["--home", "/h", *command.split(), "--json"]), command


@pytest.mark.parametrize("command", sorted(LOCAL_ONLY))
def test_local_only_commands_are_refused_through_the_station_service(
        tmp_path: Path, command: str) -> None:
    def through_the_service() -> None:
        CURRENT_CALLER.set(Caller(uid=1000, pid=1, via_service=True))
        Station(tmp_path / "home").authorize(command)

    with pytest.raises(PermissionDeniedError, match="only locally"):
        contextvars.copy_context().run(through_the_service)


def test_registry_operator_commands_open_neither_the_station_token_nor_its_registry(
        tmp_path: Path) -> None:
    """Authorised locally on a home in operator mode without any token or registry: had it
    looked for a session, it would have had to open both."""
    home = tmp_path / "station"
    home.mkdir()
    (home / "config.toml").write_text('[station]\nmode = "operator"\n')
    for command in sorted(REGISTRY_OPERATOR_COMMANDS | {"station enroll-registry"}):
        station = Station(home)
        station.authorize(command)
        assert station._registry is None and station._hsm is None


def test_the_tls_key_has_a_token_of_its_own_with_its_own_pin_file(tmp_path: Path) -> None:
    """libp11 cannot enumerate a token holding Ed25519 keys (the station's): the TLS key is
    in ``<label>-tls``; its PIN file is not the station token's (a PIN change of one
    leaves the other working)."""
    from tools.registry.tls import tls_token_config
    from tools.station.home import StationHome

    home = StationHome(tmp_path)
    home.write_settings({"hsm": home.default_hsm_settings()})
    config = tls_token_config(home)
    assert config.token_label == "juki-station-tls"
    assert config.pin_file == tmp_path / "secrets" / "registry-tls.pin"
    assert config.pin_file != home.token_config().pin_file
    assert config.module == home.token_config().module
    assert config.softhsm2_conf == home.token_config().softhsm2_conf  # one SoftHSM per process
    home.write_settings({"hsm": home.default_hsm_settings(),
                         "registry_tls": {"token_label": "hsm-partition-7", "pin_file": "/etc/p"}})
    assert (tls_token_config(home).token_label, tls_token_config(home).pin_file) == \
        ("hsm-partition-7", Path("/etc/p"))


def test_the_tls_handshake_holds_the_pkcs11_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    """libp11 signs in SoftHSM during the handshake, outside python-pkcs11; SoftHSM has no
    locking of its own, so the connect runs under the process's PKCS#11 lock."""
    import psycopg

    from hsm.token import PKCS11_LOCK
    from tools.registry import backend

    held: list[bool] = []

    class Refused(Exception):
        pass

    def connect(conninfo: str, **kwargs: object) -> None:
        held.append(PKCS11_LOCK._is_owned())  # type: ignore[attr-defined]
        raise Refused

    class Identity:
        def conninfo(self, url: str) -> str:
            return url + "&user=juki_station_x"

        def prepare(self) -> None:
            pass

    monkeypatch.setattr(psycopg, "connect", connect)
    with pytest.raises(Refused):
        backend.PostgresBackend("postgresql://h/db?sslmode=verify-full&sslrootcert=/c",
                                Identity())  # type: ignore[arg-type]
    with pytest.raises(Refused):
        backend.PostgresBackend("postgresql://h/other")  # no identity: no lock needed
    assert held == [True, False]


def test_the_tls_token_is_the_enrolled_one_whatever_token_a_command_is_pointed_at(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The identity's token is what `station enroll-registry` recorded in the home, not
    re-derived from PKCS11_TOKEN_LABEL (a command pointed at another station token,
    e.g. `issue resident` on `empty-token`, still connects as this station)."""
    import json

    from tools.registry.tls import station_identity, tls_token_config
    from tools.station.home import StationHome

    home = StationHome(tmp_path)
    home.write_settings({"hsm": home.default_hsm_settings()})
    monkeypatch.setenv("PKCS11_TOKEN_LABEL", "empty-token")
    assert home.token_config().token_label == "empty-token"
    assert tls_token_config(home).token_label == "juki-station-tls"  # the home's, not env's
    directory = tmp_path / "registry-tls"
    directory.mkdir()
    (directory / "enrolment.json").write_text(json.dumps(
        {"role": "juki_station_s1", "station_id": "s1", "key_version": 2,
         "token_label": "enrolled-tls"}))
    identity = station_identity(home)
    assert identity is not None
    assert identity.token.token_label == tls_token_config(home).token_label == "enrolled-tls"
    assert "token=enrolled-tls;" in identity.parameters()["sslkey"]
    monkeypatch.delenv("PKCS11_TOKEN_LABEL")
    assert tls_token_config(home).token_label == "enrolled-tls"


def test_revoke_station_refuses_an_id_that_names_no_role_before_changing_anything(
        tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """An id that cannot be a station role is refused whole: no certificate is marked, no
    CRL number spent (the CA home is not even opened)."""
    from tools.cli.main import run

    ca_home = tmp_path / "ca"
    status = run(["registry", "revoke-station", "x" * 41, "--ca-home", str(ca_home),
                  "--admin-db", "postgresql:///never", "--crl-out", str(tmp_path / "crl.pem")])
    assert status == 2 and "cannot name a database role" in capsys.readouterr().err
    assert not ca_home.exists() and not (tmp_path / "crl.pem").exists()


@pytest.mark.parametrize("url, shown", [
    ("postgresql://u:secret@h/db?password=hunter2", "postgresql://u:***@h/db?password=***"),
    ("postgresql://h/db?sslmode=verify-full&sslpassword=k", "postgresql://h/db?sslmode=verify-full&sslpassword=***"),
    ("postgresql:///db?host=/var/run/postgresql", "postgresql:///db?host=/var/run/postgresql"),
    ("postgresql:///db?host=/tmp&password=p", "postgresql:///db?host=/tmp&password=***"),
])
def test_a_registry_url_in_a_message_carries_no_password(url: str, shown: str) -> None:
    from tools.registry.backend import _redacted

    assert _redacted(url) == shown


@pytest.mark.parametrize("content", [b"0123abcd\n", b" 0123abcd", b"0123abcd\r\n"])
def test_a_pin_file_the_engine_would_misread_is_refused_before_connecting(
        tmp_path: Path, content: bytes) -> None:
    """libp11 takes the PIN file whole (python-pkcs11 strips it): a newline an editor
    added would fail the TLS handshake with an engine error; say what is wrong instead."""
    pin = tmp_path / "registry-tls.pin"
    pin.write_bytes(content)
    pin.chmod(0o600)
    with pytest.raises(RegistryError, match="white space around the PIN"):
        identity(tmp_path).prepare()
    assert b"0123abcd" not in str(identity(tmp_path)).encode()
