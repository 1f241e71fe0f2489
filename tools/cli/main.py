"""The ``juki`` command line: the root group, every command group it has, and the one
place where an exception becomes an exit status (``EXIT_CODES``; see ``ExitCode``).

Click lives in ``tools.cli`` only; the services below it neither print nor prompt.
Every leaf command is wrapped so that ``Station.authorize`` runs before it (operator
mode), which is why each command must have a scope decision in ``tools.station.scopes``.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from typing import Any

import click

from cardlib.errors import (
    CardError,
    InvalidPinError,
    NoCardError,
    PcscServiceError,
    PinBlockedError,
    ReaderNotFoundError,
)
from hsm.errors import HsmError

from ..errors import (
    CardNotGenuineError,
    IssuanceError,
    JukiError,
    LoginError,
    LogTamperedError,
    PermissionDeniedError,
    PinInputError,
    RequestError,
)
from ..registry.records import RegistryError
from . import (
    audit,
    card,
    crl,
    issue,
    operator,
    provide,
    registry,
    resident,
    rig,
    station,
    trust,
    verify,
)
from .common import RUN_KEY, ExitCode

COMMANDS: tuple[click.Command, ...] = (
    issue.issue, verify.verify, trust.trust, card.card, resident.resident,
    operator.operator, operator.login, operator.logout, operator.whoami, operator.pam_auth,
    station.station_group, station.hsm, station.db, station.readers,
    audit.audit, crl.crl, provide.provide, registry.registry_group,
    rig.rig, rig.emulator, rig.demo,
)

# First match wins, so a subclass comes before its base. Anything else is a station fault.
EXIT_CODES: tuple[tuple[type[BaseException], ExitCode], ...] = (
    (PermissionDeniedError, ExitCode.DENIED),
    (CardNotGenuineError, ExitCode.CHECK_FAILED),
    (LogTamperedError, ExitCode.CHECK_FAILED),
    (LoginError, ExitCode.DENIED),
    (RequestError, ExitCode.USAGE),
    (PinInputError, ExitCode.USAGE),
    (RegistryError, ExitCode.USAGE),
    (NoCardError, ExitCode.NO_CARD),
    (ReaderNotFoundError, ExitCode.NO_CARD),
    (PcscServiceError, ExitCode.STATION),
    (CardError, ExitCode.CARD),
    (IssuanceError, ExitCode.CARD),
    (HsmError, ExitCode.HSM),
)

log = logging.getLogger("juki")


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

    from ..service.context import Station
    from ..station.home import resolve_home

    level = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG}.get(verbose, APDU_LOG_LEVEL)
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = Station(resolve_home(home), db,
                      warn=lambda message: click.echo(f"juki: warning: {message}", err=True))
    ctx.meta[RUN_KEY] = run  # for `juki station serve`, which runs every request through it


def _guarded(path: str, callback: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        click.get_current_context().find_root().obj.authorize(path)
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


for _command in COMMANDS:
    cli.add_command(_command)
install_guards(cli)


def exit_code_of(exc: BaseException) -> ExitCode:
    return next((code for kind, code in EXIT_CODES if isinstance(exc, kind)), ExitCode.STATION)


def _report(exc: BaseException, as_json: bool) -> ExitCode:
    code = exit_code_of(exc)
    message = str(exc) or type(exc).__name__
    click.echo(f"juki: error: {message}", err=True)
    if as_json:
        detail: dict[str, Any] = {"type": type(exc).__name__, "message": message,
                                  "exit": int(code)}
        if isinstance(exc, InvalidPinError | PinBlockedError):
            detail["tries_left"] = exc.tries_left
        if isinstance(exc, RequestError):
            detail["field"] = exc.field
        if isinstance(exc, CardNotGenuineError):
            detail["failed_checks"] = [name for name, _ in exc.failed]
        click.echo(json.dumps({"error": detail}, ensure_ascii=False, indent=2))
    return code


def run(argv: list[str]) -> int:
    """Run one ``juki`` command line and return its exit status (the station service
    runs each client's request through here too)."""
    as_json = "--json" in argv
    try:
        result = cli.main(args=argv, prog_name="juki", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("juki: aborted", err=True)
        return ExitCode.USAGE
    except click.ClickException as exc:
        exc.show()
        return ExitCode.USAGE
    except (JukiError, CardError, HsmError) as exc:
        return _report(exc, as_json)
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    return int(result) if isinstance(result, int) else ExitCode.OK


def main(argv: list[str] | None = None) -> None:
    sys.exit(int(run(argv if argv is not None else sys.argv[1:])))
