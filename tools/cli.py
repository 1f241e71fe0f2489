"""The ``juki`` command line. Click lives here only; exit codes are mapped in ``main``.

Exit codes: 0 success; 1 the card is not genuine; 2 bad input, usage, or a request the
registry's rules refuse; 3 card error
(wrong PIN, unexpected status word, malformed card data, a card that cannot be
issued); 4 HSM error; 5 station, rig
or configuration error; 6 no reader or no card; 7 not permitted (operator mode: no valid
session or a missing scope; a refused login).
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cardlib.errors import (
    CardError,
    InvalidPinError,
    NoCardError,
    PinBlockedError,
    ReaderNotFoundError,
    TransportError,
)
from hsm.errors import HsmError

from .errors import (
    IssuanceError,
    JukiError,
    LoginError,
    PermissionDeniedError,
    PinInputError,
    RequestError,
)
from .registry import RegistryError

if TYPE_CHECKING:
    from hsm.token import Hsm

    from .operator_session import OperatorSession
    from .registry import Registry

EXIT_NOT_GENUINE = 1
EXIT_USAGE = 2
EXIT_CARD = 3
EXIT_HSM = 4
EXIT_STATION = 5
EXIT_NO_CARD = 6
EXIT_DENIED = 7

log = logging.getLogger("juki")


class Station:
    """Lazily opened resources of the station home for one command (imports are lazy
    so that `juki --help` and `juki rig` do not load PKCS#11 or SQLite)."""

    def __init__(self, home: Path, db: str | None = None) -> None:
        from .home import StationHome

        self.home = StationHome(home)
        self.db = db
        self._registry: Registry | None = None
        self._hsm: Hsm | None = None
        self._authorized = False
        self.session: OperatorSession | None = None

    @property
    def actor(self) -> str | None:
        """Who is acting, for event logs: the logged-in operator, if any."""
        return self.session.operator_id if self.session else None

    def authorize(self, command: str) -> None:
        """Decide whether ``command`` may run; in operator mode a denial is recorded and
        raises ``PermissionDeniedError``. Registry and token stay closed until this passed."""
        from .operator_session import current_session
        from .scopes import COMMAND_SCOPES, SESSION_FREE

        if command in SESSION_FREE or self.home.mode() == "open":
            self._authorized = True
            return
        scope = COMMAND_SCOPES.get(command)
        operator = None
        try:
            if scope is None:
                raise PermissionDeniedError(f"`juki {command}` has no scope assigned: "
                                            "denied by default")
            session = current_session(self.home, self._open_hsm(), self._open_registry())
            operator = session.operator_id
            if scope not in session.scopes:
                raise PermissionDeniedError(f"operator {operator} lacks the scope {scope!r} "
                                            f"that `juki {command}` needs")
        except PermissionDeniedError as exc:
            self._open_registry().record_denial(self.home.station_id(), operator, command,
                                                scope, str(exc))
            raise
        self.session = session
        self._authorized = True

    def _require_authorized(self) -> None:
        if not self._authorized and self.home.mode() != "open":
            raise PermissionDeniedError("this station is in operator mode and the command "
                                        "was not authorised")

    @property
    def registry(self) -> Registry:
        self._require_authorized()
        return self._open_registry()

    @property
    def hsm(self) -> Hsm:
        self._require_authorized()
        return self._open_hsm()

    def _open_registry(self) -> Registry:
        if self._registry is None:
            from .recovery import interrupted
            from .registry import Registry

            self.home.ensure()
            self._registry = Registry(self.db or self.home.registry_target())
            for card in interrupted(self._registry):
                click.echo(f"juki: warning: the issuance of card {card.serial} (by {card.owner}, "
                           f"started {card.created_at}) was interrupted; it is marked failed when "
                           "the card is presented again, or run `juki issue recover`", err=True)
        return self._registry

    def _open_hsm(self) -> Hsm:
        if self._hsm is None:
            self._hsm = self.home.open_token()
        return self._hsm


def emit(as_json: bool, payload: Any, text: str | Callable[[], str]) -> None:
    if as_json:
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2, default=str))
    else:
        click.echo(text() if callable(text) else text)


def json_option(func: Callable[..., Any]) -> Callable[..., Any]:
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")
    @functools.wraps(func)
    def wrapper(*args: Any, as_json: bool, **kwargs: Any) -> Any:
        click.get_current_context().find_root().meta["as_json"] = as_json
        return func(*args, as_json=as_json, **kwargs)

    return wrapper


reader_option = click.option("--reader", "reader", default=None,
                             help="Reader name, index, or unique part of its name.")
timeout_option = click.option("--timeout", default=10.0, show_default=True,
                              help="Seconds to wait for a card.")


@click.group()
@click.option("--home", envvar="JUKI_HOME", default=None,
              help="Station home directory (default $JUKI_HOME or ~/.local/share/juki).")
@click.option("--db", default=None, envvar="JUKI_DB",
              help="Registry: a postgresql:// URL (default: SQLite in the station home).")
@click.option("-v", "--verbose", count=True, help="-v info, -vv debug, -vvv APDU traffic.")
@click.pass_context
def cli(ctx: click.Context, home: str | None, db: str | None, verbose: int) -> None:
    """Resident-card issuance, verification and operator authentication."""
    from cardlib.channel import APDU_LOG_LEVEL

    from .home import resolve_home

    level = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG}.get(verbose, APDU_LOG_LEVEL)
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = Station(resolve_home(home), db)


def station() -> Station:
    found = click.get_current_context().find_object(Station)
    if found is None:
        raise click.UsageError("no station context")
    return found


def _guarded(path: str, callback: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        station().authorize(path)
        return callback(*args, **kwargs)

    return run


def install_guards(group: click.Group, prefix: str = "") -> None:
    """Wrap every leaf command so that ``Station.authorize`` runs before it."""
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            install_guards(command, path + " ")
        elif command.callback is not None and not getattr(command, "_juki_guarded", False):
            command.callback = _guarded(path, command.callback)
            command._juki_guarded = True  # type: ignore[attr-defined]


def _register_commands() -> None:
    from . import (
        commands_admin,
        commands_audit,
        commands_cards,
        commands_operator,
        commands_station,
    )

    commands_station.register(cli)
    commands_audit.register(cli)
    commands_cards.register(cli)
    commands_admin.register(cli)
    commands_operator.register(cli)
    install_guards(cli)


def _exit_code(exc: BaseException) -> int:
    if isinstance(exc, PermissionDeniedError | LoginError):
        return EXIT_DENIED
    if isinstance(exc, RequestError | PinInputError | RegistryError):
        return EXIT_USAGE
    if isinstance(exc, NoCardError | ReaderNotFoundError):
        return EXIT_NO_CARD
    if isinstance(exc, TransportError) and "pcscd" in str(exc):
        return EXIT_STATION
    if isinstance(exc, CardError | IssuanceError):
        return EXIT_CARD
    if isinstance(exc, HsmError):
        return EXIT_HSM
    return EXIT_STATION


def _report(exc: BaseException, as_json: bool) -> int:
    code = _exit_code(exc)
    message = str(exc) or type(exc).__name__
    click.echo(f"juki: error: {message}", err=True)
    if as_json:
        detail: dict[str, Any] = {"type": type(exc).__name__, "message": message, "exit": code}
        if isinstance(exc, InvalidPinError | PinBlockedError):
            detail["tries_left"] = exc.tries_left
        if isinstance(exc, RequestError):
            detail["field"] = exc.field
        click.echo(json.dumps({"error": detail}, ensure_ascii=False, indent=2))
    return code


def main(argv: list[str] | None = None) -> None:
    _register_commands()
    as_json = "--json" in (argv if argv is not None else sys.argv[1:])
    try:
        result = cli.main(args=argv, prog_name="juki", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("juki: aborted", err=True)
        sys.exit(EXIT_USAGE)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except (JukiError, CardError, HsmError) as exc:
        sys.exit(_report(exc, as_json))
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(result if isinstance(result, int) else 0)
