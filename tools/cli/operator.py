"""``juki operator …`` (enrolment and life cycle of operators and their PIV cards) and
the operator's own ``juki login``, ``logout``, ``whoami`` and ``pam-auth``."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ..errors import LoginError, PinInputError
from ..station.caller import caller
from ..station.pins import OPERATOR_PIN, OPERATOR_PUK, Pin
from .common import (
    card_options,
    collect_cli_pins,
    emit,
    json_option,
    pin_file_option,
    presented,
    reader_option,
    station,
    terminal,
)

id_option = click.option("--id", "operator_id", required=True, help="Operator ID.")
PAM_PIN_LIMIT = 64


@click.group()
def operator() -> None:
    """Operators: enrolment of their PIV cards, scopes, life cycle."""


@operator.command("enroll")
@id_option
@click.option("--name", required=True, help="The operator's name.")
@click.option("--municipality", required=True, help="6-digit municipality code.")
@click.option("--scopes", required=True, help="Comma-separated scopes (see docs/cli.md).")
@click.option("--unix-user", default=None, help="Login name the PAM hook maps to this operator.")
@click.option("--algorithm", type=click.Choice(["p256", "rsa2048"]), default="p256",
              show_default=True, help="Algorithm of the login key (9A).")
@card_options
@pin_file_option
@json_option
def operator_enroll(operator_id: str, name: str, municipality: str, scopes: str,
                    unix_user: str | None, algorithm: str, reader: str | None, timeout: float,
                    pin_file: Path | None, as_json: bool) -> None:
    """Provision a blank PIV card as OPERATOR's card (PIN and PUK from prompt/stdin/file)."""
    from ..operators.enrolment import ALGORITHMS, EnrolmentRequest, enrol_operator
    from ..pki.issued import crl_base_url
    from ..station.scopes import parse_scopes

    request = EnrolmentRequest(operator_id, name, municipality, parse_scopes(scopes), unix_user,
                               ALGORITHMS[algorithm])
    pins = collect_cli_pins([OPERATOR_PIN, OPERATOR_PUK], pin_file, confirm=True)
    st = station()
    hsm, registry = st.hsm, st.registry
    with presented(reader, timeout, kind="operator") as (_name, channel):
        enrolled = enrol_operator(channel, hsm, registry, request, pins["operator_pin"],
                                  pins["operator_puk"], st.actor,
                                  crl_base_url(st.home.settings()))
    emit(as_json, enrolled.as_json(),
         f"operator {enrolled.operator_id} enrolled on card {enrolled.card_guid} "
         f"({enrolled.algorithm}, certificate valid to {enrolled.not_after})")


@operator.command("list")
@click.option("--status", default=None, help="Only operators in this status.")
@json_option
def operator_list(status: str | None, as_json: bool) -> None:
    """List operators with their scopes and status."""
    operators = station().registry.operators(status)
    emit(as_json, [o.as_json() for o in operators], lambda: "\n".join(
        f"{o.operator_id:16} {o.status:10} {'LOCKED ' if o.locked_at else ''}"
        f"{o.name} [{','.join(sorted(o.scope_set))}]" for o in operators) or "no operators")


@operator.command("show")
@id_option
@json_option
def operator_show(operator_id: str, as_json: bool) -> None:
    """One operator with their event log."""
    from ..registry.records import RegistryError

    registry = station().registry
    record = registry.operator(operator_id)
    if record is None:
        raise RegistryError(f"no operator {operator_id}")
    events = registry.operator_events(operator_id)
    emit(as_json, record.as_json() | {"events": events}, lambda: "\n".join(
        [f"{k}: {v}" for k, v in record.as_json().items()] +
        [f"  {e['at']} {e['event']} {e['detail'] or ''} {e['actor'] or ''}" for e in events]))


def _status_command(name: str, to: str, help_text: str, reason_required: bool = False) -> None:
    @operator.command(name, help=help_text)
    @id_option
    @click.option("--reason", required=reason_required, default=None)
    @json_option
    def change(operator_id: str, reason: str | None, as_json: bool) -> None:
        st = station()
        before = st.registry.set_operator_status(operator_id, to, reason, st.actor)
        emit(as_json, {"operator_id": operator_id, "from": before, "to": to},
             f"operator {operator_id}: {before} -> {to}")


_status_command("suspend", "suspended", "Suspend an operator (no logins; sessions end).")
_status_command("resume", "active", "Resume a suspended operator.")
_status_command("revoke", "revoked", "Revoke an operator for good.", reason_required=True)


@operator.command("unlock")
@id_option
@json_option
def operator_unlock(operator_id: str, as_json: bool) -> None:
    """Lift the lock-out after too many failed logins."""
    st = station()
    st.registry.unlock_operator(operator_id, st.actor)
    emit(as_json, {"operator_id": operator_id, "locked": False}, f"operator {operator_id} unlocked")


@operator.command("unblock")
@id_option
@card_options
@pin_file_option
@json_option
def operator_unblock(operator_id: str, reader: str | None, timeout: float,
                     pin_file: Path | None, as_json: bool) -> None:
    """Reset a blocked card PIN with the PUK (RESET RETRY COUNTER); PUK then new PIN."""
    from cardlib.apps.piv import PivSession

    from ..operators.login import read_operator_card

    pins = collect_cli_pins([OPERATOR_PUK, OPERATOR_PIN], pin_file, confirm=False)
    st = station()
    record = st.registry.operator(operator_id)
    if record is None:
        raise LoginError(f"no operator {operator_id}")
    with presented(reader, timeout, kind="operator") as (_name, channel):
        piv = PivSession(channel)
        card = read_operator_card(piv)
        if card.operator_id != operator_id or card.guid != record.card_guid:
            raise LoginError(f"the card in the reader is not {operator_id}'s enrolled card")
        with piv.pin_forgotten():
            piv.unblock_pin(pins["operator_puk"].reveal(), pins["operator_pin"].reveal())
    st.registry.note_operator_event(operator_id, "PIN reset with PUK", None, st.actor)
    emit(as_json, {"operator_id": operator_id, "pin_reset": True},
         f"operator {operator_id}: PIN reset, 3 tries")


@operator.command("denials")
@json_option
def operator_denials(as_json: bool) -> None:
    """Every command refused in operator mode, oldest first."""
    denials = station().registry.denials()
    emit(as_json, [d.as_json() for d in denials], lambda: "\n".join(
        f"{d.at} {d.operator_id or '-':12} juki {d.command}: {d.reason}" for d in denials)
        or "no denials")


# ---- login ----------------------------------------------------------------------------------

def _authenticate(reader: str | None, timeout: float, pin: Pin,
                  expected: str | None = None):  # type: ignore[no-untyped-def]
    from ..operators.challenge import LoginPurpose
    from ..operators.login import OperatorAuthenticator

    st = station()
    authenticator = OperatorAuthenticator(st.registry, st.hsm, st.home.operator_policy(),
                                          station_id=st.home.station_id())
    purpose = LoginPurpose.SESSION if expected is None else LoginPurpose.PAM
    with presented(reader, timeout, kind="operator") as (_name, channel):
        return authenticator.authenticate(channel, pin, expected, purpose)


@click.command("login")
@card_options
@pin_file_option
@json_option
def login(reader: str | None, timeout: float, pin_file: Path | None, as_json: bool) -> None:
    """Log in with the operator card in the reader and its PIN; starts a station session."""
    from ..operators.session import start_session

    pin = collect_cli_pins([OPERATOR_PIN], pin_file, confirm=False)["operator_pin"]
    st = station()
    operator = _authenticate(reader, timeout, pin)
    session = start_session(st.home, st.hsm, st.registry, operator)
    emit(as_json, session.as_json(),
         f"logged in as {operator.operator_id} ({operator.name}); scopes "
         f"{','.join(session.scopes)}; until {session.expires_at}")


@click.command("logout")
@json_option
def logout(as_json: bool) -> None:
    """End the station's operator session."""
    from ..operators.session import end_session

    st = station()
    ended = end_session(st.home, st.registry)
    emit(as_json, {"logged_out": ended.operator_id if ended else None},
         f"{ended.operator_id} logged out" if ended else "nobody was logged in")


@click.command("whoami")
@json_option
def whoami(as_json: bool) -> None:
    """The logged-in operator and the scopes in force (exit 7 if none)."""
    from ..operators.session import current_session

    st = station()
    session = current_session(st.home, st.hsm, st.registry)
    emit(as_json, session.as_json(),
         f"{session.operator_id} on {session.station}; scopes {','.join(session.scopes)}; "
         f"until {session.expires_at}")


def _pam_pin() -> Pin:
    """pam_exec ``expose_authtok`` writes the token and a NUL to stdin."""
    raw = terminal().stdin().buffer.read(PAM_PIN_LIMIT + 2)
    text = raw.split(b"\x00", 1)[0].decode("ascii", "replace").strip("\r\n")
    try:
        return OPERATOR_PIN.check(text)
    except PinInputError:
        raise LoginError("the PIN from PAM is not 6 to 8 digits") from None


@click.command("pam-auth")
@reader_option
@click.option("--timeout", default=5.0, show_default=True, help="Seconds to wait for a card.")
def pam_auth(reader: str | None, timeout: float) -> None:
    """PAM hook (pam_exec expose_authtok): PIN on stdin, user in PAM_USER; succeeds only
    for the card of the operator mapped to that user."""
    if caller().via_service and caller().uid != 0:
        raise LoginError("only root (the PAM stack) may ask the station service for a PAM "
                         f"authentication, not {caller().label}")
    user = os.environ.get("PAM_USER")
    if not user:
        raise LoginError("PAM_USER is not set (run from pam_exec)")
    pin = _pam_pin()
    st = station()
    operator = st.registry.operator_of_unix_user(user)
    if operator is None:
        raise LoginError(f"login name {user} is mapped to no operator")
    _authenticate(reader, timeout, pin, expected=operator.operator_id)
    st.registry.record_login(operator.operator_id, f"pam:{user}")
