"""What every command module shares: the exit codes, the station of this invocation,
output, the options that recur, PIN collection and the card a command works on.

Command modules import this and nothing of each other; ``main`` imports them all.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..station.pins import PinSpec, collect_pins

if TYPE_CHECKING:
    from cardlib.channel import ApduChannel

    from ..service.context import Station


class ExitCode(IntEnum):
    """The exit status of ``juki`` (stable: other systems branch on it)."""

    OK = 0
    CHECK_FAILED = 1  # a check failed: card not genuine, chain, log, proof or consistency
    USAGE = 2  # bad input, usage, or a request the registry's rules refuse
    CARD = 3  # wrong PIN, unexpected status word, malformed card data, card not issuable
    HSM = 4
    STATION = 5  # station, rig, configuration, pcscd, a provision that cannot be recorded
    NO_CARD = 6  # no reader or no card
    DENIED = 7  # operator mode: no valid session, a missing scope; a refused login
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, the shell's convention)


def station() -> Station:
    """The station of this invocation (made by the root group; imported lazily so that
    `juki --help` loads neither PKCS#11 nor SQLite)."""
    found = click.get_current_context().find_root().obj
    if found is None:
        raise click.UsageError("no station context")
    return found


def emit(as_json: bool, payload: Any, text: str | Callable[[], str]) -> None:
    """Print the result: ``payload`` as JSON with ``--json``, else ``text``."""
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


def card_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--reader`` and ``--timeout``: every command that works on a presented card."""
    return reader_option(timeout_option(func))


@contextmanager
def presented(reader: str | None, timeout: float,
              kind: str = "any") -> Iterator[tuple[str, ApduChannel]]:
    """The chosen reader's name and an exclusive channel to its card (see
    ``tools.station.readers.presented_card``)."""
    from ..station.readers import presented_card

    with presented_card(reader, timeout, kind=kind) as found:
        yield found


pin_file_option = click.option(
    "--pin-file", type=click.Path(path_type=Path), default=None,
    help="File of name=value PIN lines (card_info, jpki_auth, jpki_sign), mode 600.")


def collect_cli_pins(specs: list[PinSpec], pin_file: Path | None, confirm: bool) -> dict:
    """PINs from ``--pin-file``, else stdin when it is not a terminal, else a hidden prompt."""
    def prompt(spec: PinSpec) -> str:
        return click.prompt(spec.label, hide_input=True, confirmation_prompt=confirm,
                            err=True)

    return collect_pins(specs, pin_file=pin_file, stdin=sys.stdin,
                        stdin_is_tty=sys.stdin.isatty(), prompt=prompt)


recipient_option = click.option("--recipient", default=None,
                                help="Agency receiving the information (`juki audit recipients`).")
purpose_option = click.option("--purpose", default=None,
                              help="Purpose code permitted to that recipient.")


def provision_release(recipient: str | None, purpose: str | None, required: bool):  # type: ignore[no-untyped-def]
    """The provision this command makes, its purpose checked before any card I/O (a
    refusal is recorded); None when the command releases nothing to anyone."""
    from ..audit.provision import check_purpose, release_for

    if recipient is None and purpose is None and not required:
        return None
    if recipient is None or purpose is None:
        raise click.UsageError("give both --recipient and --purpose")
    st = station()
    release = release_for(st.home, st.actor, recipient, purpose)
    check_purpose(st.registry, st.hsm, release, None,
                  st.home.settings().get("audit", {}).get("recipients_file"))
    return release


def record_provision(release, fields: list[str], card_serial: str | None) -> int:  # type: ignore[no-untyped-def]
    """Record the provision of ``fields`` of the card's resident; returns the entry index.
    Called before anything is printed: what cannot be recorded is not released."""
    from ..audit.provision import record, resident_of_card

    st = station()
    resident_id, code = resident_of_card(st.registry, card_serial)
    return record(st.registry, st.hsm, release, kind="provision", fields=fields,
                  resident_id=resident_id, record_code=code, card_serial=card_serial)
