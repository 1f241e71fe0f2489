"""`juki registry init-ca | issue-station | revoke-station | crl`: the registry operator
admits stations to a shared PostgreSQL registry and shuts them out again.

The station CA's key is in the token of the registry operator's own home (``--ca-home``;
a home without a configured token gets a SoftHSM one, the test system's token; production
configures ``[hsm]`` for its HSM first). Database roles are made and disabled on the
administrative connection (``--admin-db``: the operator's OS account over the local
socket, peer authentication). These commands never touch the station home, its token,
registry or operator session, and never run through the station service
(``tools.station.scopes.REGISTRY_OPERATOR_COMMANDS``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click
from cryptography.hazmat.primitives import serialization

from ..station.home import StationHome
from .common import emit, json_option
from .registry import registry_group

CA_TOKEN_LABEL = "juki-registry-ca"  # a CA home's SoftHSM token, when init-ca makes it

ca_home_option = click.option(
    "--ca-home", required=True, type=click.Path(file_okay=False, path_type=Path),
    help="The registry operator's home whose token holds the station CA.")
admin_db_option = click.option(
    "--admin-db", required=True, metavar="URL",
    help="Administrative connection to the registry (postgresql://, peer auth as juki_owner).")
next_update_option = click.option(
    "--next-update-days", default=30, show_default=True, type=click.IntRange(1, 366),
    help="The CRL's nextUpdate: PostgreSQL refuses every station once it has passed, so "
         "rewrite it (`juki registry crl`) before then.")


def _ca_token(ca_home: Path, create: bool = False):  # type: ignore[no-untyped-def]
    home = StationHome(ca_home.resolve())
    if create and not home.settings().get("hsm"):
        from ..rig.rig import Rig

        settings = home.settings()
        settings["hsm"] = {**home.default_hsm_settings(), "token_label": CA_TOKEN_LABEL}
        home.write_settings(settings)
        Rig(home).ensure_token()
    return home.open_token()


def _write_public(path: Path, data: bytes) -> None:
    """A certificate or CRL: public, readable by the server (0644), replaced atomically
    and durably (the server rereads the CRL at its next reload, after a crash too)."""
    import os

    from cardlib.atomic_file import sync_directory

    tmp = path.with_name(f".{path.name}.new")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.chmod(0o644)
    tmp.replace(path)
    sync_directory(path.parent)


def _write_crl(hsm, ca_home: Path, out: Path, days: int) -> dict[str, object]:  # type: ignore[no-untyped-def]
    from cryptography import x509

    from ..pki.station_ca import StationCertificates, build_crl

    crl = build_crl(hsm, StationCertificates(ca_home), dt.timedelta(days=days))
    _write_public(out, crl.public_bytes(serialization.Encoding.PEM))
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert crl.next_update_utc is not None
    return {"crl": str(out), "number": number, "revoked": len(crl),
            "next_update": crl.next_update_utc.isoformat()}


@registry_group.command("init-ca")
@ca_home_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the CA certificate (PEM) here: PostgreSQL's ssl_ca_file.")
@json_option
def init_ca(ca_home: Path, out: Path | None, as_json: bool) -> None:
    """Create the station CA (EC P-256 key in the token, self-signed certificate);
    idempotent."""
    from ..pki.station_ca import ensure_station_ca

    cert, created = ensure_station_ca(_ca_token(ca_home, create=True))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    if out is not None:
        _write_public(out, pem)
    emit(as_json, {"created": created, "subject": cert.subject.rfc4514_string(),
                   "out": str(out) if out else None, "certificate": pem.decode("ascii")},
         f"station CA {cert.subject.rfc4514_string()}: "
         f"{'created' if created else 'already present'}" + (f"\nwritten to {out}" if out else ""))


@registry_group.command("issue-station")
@click.argument("csr", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@ca_home_option
@admin_db_option
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Write the station's certificates here (PEM: the TLS client certificate, "
                   "the log-signer certificate, the station CA certificate).")
@click.option("--days", default=365, show_default=True, type=int, help="Validity.")
@click.option("--station-id", default=None,
              help="The station id, for a CSR without UID (must give the CSR's CN).")
@json_option
def issue_station(csr: Path, ca_home: Path, admin_db: str, out: Path, days: int,
                  station_id: str | None, as_json: bool) -> None:
    """Check a station's CSR, create its database role and binding, and issue its TLS
    client certificate and its log-signer certificate from the station CA (the latter
    kept in the registry's log_signers)."""
    from ..pki.log_signer_certs import issue_log_signer, refuse_foreign_row, store_checked
    from ..pki.station_ca import StationCertificates, ca_certificate, check_request, issue
    from ..registry import log_signers
    from ..registry.backend import open_backend
    from ..registry.pg_roles import add_station

    request = check_request(csr.read_bytes(), station_id)
    hsm = _ca_token(ca_home)
    ca = ca_certificate(hsm)
    cert = issue(hsm, request, days)  # first: a refused request leaves no role behind
    log_cert = issue_log_signer(hsm, request, days)
    db = open_backend(admin_db)
    try:
        _needs_log_signers(db)
        refuse_foreign_row(hsm, db, request.station_id, log_signers.key_id(request.log_key))
        role = add_station(db, request.station_id)
        store_checked(hsm, db, request.station_id, log_cert)  # autocommit: its own statement
    finally:
        db.close()
    entry = StationCertificates(ca_home.resolve()).record(request.station_id, cert)
    _write_public(out, b"".join(c.public_bytes(serialization.Encoding.PEM)
                                for c in (cert, log_cert, ca)))
    log_key_id = log_signers.key_id(request.log_key)
    emit(as_json, {**entry.as_json(), "certificate": str(out), "log_key_id": log_key_id},
         f"{out}: station {entry.station_id} as {role}, serial {entry.serial}, "
         f"until {entry.not_after}; log key {log_key_id}")


def _needs_log_signers(db) -> None:  # type: ignore[no-untyped-def]
    """A registry before migration 10 has nowhere to keep the log-signer certificate:
    refused before the station's role is made."""
    from ..registry.records import RegistryError

    if db.dialect == "postgresql" and db.execute(  # (SQLite: add_station refuses it)
            "SELECT to_regclass('log_signers')").fetchone()[0] is None:
        raise RegistryError("the registry has no log_signers table (schema before 10): "
                            "run `juki db upgrade` as the registry operator first")


def _reload(db) -> None:  # type: ignore[no-untyped-def]
    """The server rereads ssl_crl_file only on a reload (its role is NOLOGIN already)."""
    import psycopg

    from ..registry.records import RegistryError

    try:
        db.execute("SELECT pg_reload_conf()")
    except psycopg.errors.InsufficientPrivilege:
        raise RegistryError("the CRL is written and the station's role disabled, but this "
                            "connection may not reload the server: run SELECT pg_reload_conf() "
                            "as a superuser, or GRANT EXECUTE ON FUNCTION pg_reload_conf() TO "
                            "juki_owner") from None


@registry_group.command("revoke-station")
@click.argument("station_id")
@ca_home_option
@admin_db_option
@click.option("--crl-out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Write the new CRL (PEM) here: PostgreSQL's ssl_crl_file.")
@next_update_option
@json_option
def revoke_station(station_id: str, ca_home: Path, admin_db: str, crl_out: Path,
                   next_update_days: int, as_json: bool) -> None:
    """Revoke the station's certificates, write the CRL, disable its role and make the
    server reload: its next connection is refused."""
    from ..errors import RequestError
    from ..pki.station_ca import StationCertificates
    from ..registry.backend import open_backend
    from ..registry.pg_roles import disable_station
    from ..registry.roles import station_role

    try:  # before anything changes: an id that names no station role is refused whole
        station_role(station_id)
    except ValueError as exc:
        raise RequestError("station id", str(exc)) from None
    hsm = _ca_token(ca_home)
    revoked = StationCertificates(ca_home.resolve()).revoke(station_id)
    written = _write_crl(hsm, ca_home.resolve(), crl_out, next_update_days)
    db = open_backend(admin_db)
    try:
        try:
            disable_station(db, station_id)
        finally:  # the new CRL is read even if ending the sessions failed
            _reload(db)
    finally:
        db.close()
    emit(as_json, {"station_id": station_id, "serials": [e.serial for e in revoked], **written},
         f"station {station_id}: {len(revoked)} certificate(s) revoked; CRL {written['number']} "
         f"in {crl_out}; role disabled; server reloaded")


@registry_group.command("crl")
@ca_home_option
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Write the CRL (PEM) here: PostgreSQL's ssl_crl_file.")
@next_update_option
@json_option
def crl(ca_home: Path, out: Path, next_update_days: int, as_json: bool) -> None:
    """(Re)write the station CA's current CRL (an empty one at set-up: PostgreSQL needs
    the file)."""
    written = _write_crl(_ca_token(ca_home), ca_home.resolve(), out, next_update_days)
    emit(as_json, written, f"CRL {written['number']} ({written['revoked']} revoked) in {out}, "
                           f"next update {written['next_update']}")
