"""``juki station`` (mode and status), ``juki hsm`` (the token's key inventory),
``juki db`` (the registry's schema) and ``juki readers``: the station's own resources."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import click

from ..errors import PermissionDeniedError
from ..station.caller import caller
from .common import RUN_KEY, emit, json_option, read_client_file, station


@click.group("station")
def station_group() -> None:
    """The station's mode (open or operator) and status."""


@station_group.command("mode")
@click.argument("mode", type=click.Choice(["open", "operator"]))
@json_option
def station_mode(mode: str, as_json: bool) -> None:
    """Switch the station to MODE; operator mode needs an active operator-admin first,
    open mode needs root (a station with an operator-admin is in operator mode unless a
    root-owned config says open)."""
    st = station()
    if mode == "open" and caller().via_service:
        raise PermissionDeniedError("an open station needs root's word: root starts the station "
                                    "service with --open (its unit file)")
    if mode == "open" and os.geteuid() != 0:
        raise PermissionDeniedError(
            "an open station needs root's word once it has an operator-admin: as root, run "
            f"`juki --home {st.home.root} station mode open` (the config then belongs to root)")
    if mode == "operator" and not st.registry.has_active_admin():
        raise PermissionDeniedError("enrol an active operator with the operator-admin scope "
                                    "before switching to operator mode")
    settings = st.home.settings()
    settings.setdefault("station", {})["mode"] = mode
    st.home.write_settings(settings)
    emit(as_json, {"mode": mode}, f"station mode: {mode}")


@station_group.command("serve")
@click.option("--socket", "socket_path", type=click.Path(path_type=Path), default=None,
              help="Unix socket to listen on (default /run/juki/juki.sock).")
@click.option("--group", default=None,
              help="Group whose members may connect (e.g. juki-operators); else the owner only.")
@click.option("--workers", default=4, show_default=True, type=click.IntRange(1, 64),
              help="Requests served at once (each worker keeps one token session).")
@click.option("--open", "allow_open", is_flag=True,
              help="Keep the station open (no operator login) even once it has an "
                   "operator-admin: root's word, given in the service's unit file.")
def station_serve(socket_path: Path | None, group: str | None, workers: int,
                  allow_open: bool) -> None:
    """Run the station service in the foreground: clients (`juki`, the PAM hook) send
    their commands over the socket; the caller is taken from the kernel (SO_PEERCRED)."""
    from ..service.protocol import DEFAULT_SOCKET
    from ..service.server import serve
    from ..station.caller import ServicePolicy

    run = click.get_current_context().find_root().meta[RUN_KEY]
    serve(station().home, socket_path or Path(DEFAULT_SOCKET), group, run,
          ready=lambda message: click.echo(message, err=True), pool=workers,
          policy=ServicePolicy(allows_open=allow_open))


@station_group.command("status")
@json_option
def station_status(as_json: bool) -> None:
    """Mode and station ID."""
    from ..operators.session import session_file
    from ..station.caller import caller

    home = station().home
    info = {"mode": station().mode(), "station": home.station_id(),
            "session_file": session_file(home, caller().uid).exists()}
    emit(as_json, info, f"station {info['station']}: {info['mode']} mode")


def record_enrolment_key(st) -> None:  # type: ignore[no-untyped-def]
    """The key-created event of the log key `enroll-registry` made: the station could not
    reach its registry then (nor MAC an entry: `hsm init` makes the audit keys), so
    `hsm init`, which follows, records it."""
    from ..audit.events import key_created_events, record_key_events
    from ..registry import tls_enrol

    label = tls_enrol.unrecorded_key(st.home)
    if label is not None:
        events = key_created_events([(label, True)])
        record_key_events(st.registry, [replace(e, reason="enroll-registry") for e in events])
        tls_enrol.key_recorded(st.home)


@station_group.command("enroll-registry")
@click.option("--install", "certificate", type=click.Path(path_type=Path), default=None,
              help="Install the bundle the registry operator issued for the CSR (TLS, "
                   "log-signer and station CA certificates; all three or nothing).")
@click.option("--new-key", is_flag=True,
              help="Make a new TLS key (next version) instead of reusing this station's.")
@json_option
def station_enroll_registry(certificate: Path | None, new_key: bool, as_json: bool) -> None:
    """Make this station's TLS key for a shared registry in its TLS token and write a CSR
    (registry-tls/station.csr, CN = its database role, with its log-signing key) for
    `juki registry issue-station`; with --install, check and install the certificates
    issued for it."""
    from ..registry import tls_enrol

    st = station()
    if certificate is None:
        done = tls_enrol.request(st.home, new_key=new_key)
        emit(as_json, done.as_json("csr"), f"{done.path}\nrole: {done.role}")
        return
    if new_key:
        raise click.UsageError("--new-key makes a CSR; it does not go with --install")
    done = tls_enrol.install(st.home, read_client_file(certificate))
    emit(as_json, done.as_json("certificate"),
         f"installed {done.path}: this station connects to the registry as {done.role}")


@click.group()
def hsm() -> None:
    """The PKCS#11 token: key inventory by role."""


@hsm.command("init")
@json_option
def hsm_init(as_json: bool) -> None:
    """Create the issuing CA, the card master keys and our CV hierarchy in the token
    (idempotent)."""
    from cryptography.hazmat.primitives import serialization

    from hsm.station_keys import ensure_station_keys

    from ..audit.events import key_created_events, record_key_events

    st = station()
    result = ensure_station_keys(st.hsm)
    record_key_events(st.registry, key_created_events(result.keys))  # 操作履歴
    record_enrolment_key(st)
    keys = [{"label": label, "created": created} for label, created in result.keys]
    payload = {
        "created": result.created,
        "keys": keys,
        "ca_certificate": result.ca_certificate.public_bytes(serialization.Encoding.PEM).decode(),
    }
    emit(as_json, payload,
         "\n".join(f"{k['label']}: {'created' if k['created'] else 'already present'}" for k in keys)
         + f"\nCA subject: {result.ca_certificate.subject.rfc4514_string()}")


@hsm.command("status")
@json_option
def hsm_status(as_json: bool) -> None:
    """List the project's keys in the token with their protection attributes."""
    from hsm.keys import inventory

    st = station()
    keys = inventory(st.hsm)
    config = st.hsm.config
    payload = {"module": config.module, "token_label": config.token_label,
               "keys": [k.as_json() for k in keys]}

    def text() -> str:
        lines = [f"token {config.token_label} in {config.module}"]
        if not keys:
            lines.append("no keys: run `juki hsm init`")
        for k in keys:
            lines.append(
                f"{k.role:24} v{k.version} {k.key_type}-{k.bits} "
                f"sensitive={k.sensitive} extractable={k.extractable} "
                f"certificate={'yes' if k.has_certificate else 'no'}"
                + (f" cv-key-id={k.cv_key_id}" if k.cv_key_id else "")
            )
        return "\n".join(lines)

    emit(as_json, payload, text)


@click.group()
def db() -> None:
    """The registry database."""


@db.command("upgrade")
@json_option
def db_upgrade(as_json: bool) -> None:
    """Apply pending schema migrations (also done automatically on first use)."""
    registry = station().registry
    emit(as_json, {"schema_version": registry.schema_version(), "backend": registry.dialect},
         f"registry ({registry.dialect}): schema version {registry.schema_version()}")


@click.command()
@json_option
def readers(as_json: bool) -> None:
    """Readers, card presence and the profile each card answers to (by AID)."""
    from ..station.readers import describe_readers

    reports = describe_readers()

    def text() -> str:
        if not reports:
            return "no readers"
        lines = []
        for r in reports:
            what = "empty"
            if r.card_present:
                what = f"{r.profile or 'unknown card'}"
                if r.card_serial:
                    what += f", serial {r.card_serial}, {r.life_cycle}"
            lines.append(f"{r.name}: {what}")
        return "\n".join(lines)

    emit(as_json, [r.as_json() for r in reports], text)
