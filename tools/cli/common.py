"""What every command module shares: the exit codes, the station of this invocation,
output, the options that recur, PIN collection and the card a command works on.

Command modules import this and nothing of each other; ``main`` imports them all.
"""

from __future__ import annotations

import functools
import io
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click

from ..errors import ExitCode as ExitCode  # re-exported: the command modules take it from here
from ..station.caller import CURRENT_TERMINAL, ClientFile, Terminal
from ..station.pins import CREDENTIALS, Pin, PinSpec, collect_pins

if TYPE_CHECKING:
    from cardlib.channel import ApduChannel

    from ..service.context import Station


RUN_KEY = "juki.run"  # ctx.meta: main.run, the whole command line runner (see station serve)


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


def client_path() -> click.Path:
    """A path on the caller's side: the caller opens it (the client, when the station
    service runs the command), so click must not stat or open it in this process."""
    return click.Path(path_type=Path, readable=False)


pin_file_option = click.option(
    "--pin-file", type=client_path(), default=None,
    help="File of name=value PIN lines (card_info, jpki_auth, jpki_sign), mode 600.")


class LocalTerminal:
    """This process's own terminal and files (no station service in between)."""

    def stdin_is_tty(self) -> bool:
        return sys.stdin.isatty()

    def stdin(self) -> TextIO:
        return sys.stdin

    def ask_secret(self, label: str, confirm: bool) -> str:
        return str(click.prompt(label, hide_input=True, confirmation_prompt=confirm, err=True))

    def read_file(self, path: Path) -> ClientFile:
        return ClientFile(path.read_bytes(), path.stat().st_mode)

    def write_file(self, path: Path, data: bytes) -> None:
        path.write_bytes(data)

    def make_dir(self, path: Path, private: bool = False) -> None:
        if private:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.mkdir(mode=0o700)  # FileExistsError: never written into silently
            path.chmod(0o700)  # whatever the umask
        else:
            path.mkdir(parents=True, exist_ok=True)


LOCAL_TERMINAL = LocalTerminal()


def terminal() -> Terminal:
    """The caller's terminal: the client's when the station service runs the command."""
    return CURRENT_TERMINAL.get() or LOCAL_TERMINAL


class _FirstUseStdin(io.TextIOBase):
    """The caller's stdin, fetched only when a PIN is actually read from it."""

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        return terminal().stdin().readline(size if size is not None else -1)


def read_client_file(path: Path) -> bytes:
    """A file named on the command line, read with the caller's own permissions."""
    return terminal().read_file(path).data


def collect_cli_pins(specs: list[PinSpec], pin_file: Path | None, confirm: bool) -> dict:
    """PINs from ``--pin-file``, else stdin when it is not a terminal, else a hidden prompt."""
    term = terminal()

    def read(path: Path) -> tuple[bytes, int]:
        found = term.read_file(path)
        return found.data, found.mode

    return collect_pins(specs, pin_file=pin_file, stdin=_FirstUseStdin(),
                        stdin_is_tty=term.stdin_is_tty(),
                        prompt=lambda spec: term.ask_secret(spec.label, confirm), read=read)


credential_option = click.option(
    "--with", "credential", type=click.Choice(["pin", "a", "b"]), default="pin",
    show_default=True,
    help="Credential presented to the card-info AP: its PIN (pin file name card_info), "
         "照合番号A (collation_a) or 照合番号B (collation_b); read like PINs, never from argv.")


def collect_credential(credential: str, pin_file: Path | None) -> tuple[str, Pin]:
    """The one credential of ``--with`` (``pin``, ``a`` or ``b``): its name and value, from
    ``--pin-file``, else stdin, else a hidden prompt, like every PIN."""
    spec = CREDENTIALS[credential]
    return credential, collect_cli_pins([spec], pin_file, confirm=False)[spec.name]


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


def station_release(purpose: str):  # type: ignore[no-untyped-def]
    """A view at the station itself (recipient ``STATION``, a station purpose such as
    ``REGISTRY-ADMIN``): recorded like any provision, never in the recipient table."""
    from ..audit.provision import STATION, release_for

    st = station()
    return release_for(st.home, st.actor, STATION, purpose)


def record_provision(release, fields: list[str], card_serial: str | None) -> int:  # type: ignore[no-untyped-def]
    """Record the provision of ``fields`` of the card's resident; returns the entry index.
    Called before anything is printed: what cannot be recorded is not released."""
    from ..audit.provision import record, resident_of_card

    st = station()
    resident_id, code = resident_of_card(st.registry, card_serial)
    return record(st.registry, st.hsm, release, kind="provision", fields=fields,
                  resident_id=resident_id, record_code=code, card_serial=card_serial)


def trust_store():  # type: ignore[no-untyped-def]
    """The station's trust store: the sets and extra file of its config, and the
    station anchors of its token (`juki trust list`)."""
    from ..station.trust import TrustStore

    st = station()
    return TrustStore.from_settings(st.home.settings(), st.hsm)


def authenticated_card(channel: ApduChannel, release,  # type: ignore[no-untyped-def]
                       credential: tuple[str, Pin], trust=None) -> str:
    """The registry serial of the card on ``channel`` once it has proven itself with every
    check of `juki verify`, presenting ``credential`` (``--with`` name, value) once: the
    card-info AP is left selected with it verified, so the read that follows needs no
    second VERIFY. A card that fails any check is refused before anything is read: the
    refusal is recorded (with no resident and no serial, since the card's claim is
    unproven) and ``CardNotGenuineError`` names the failed checks. ``trust``: the
    command's ``trust_store()``, if it has built one already."""
    from ..audit.provision import record
    from ..errors import CardNotGenuineError
    from ..resident.verifier import Verifier

    st = station()
    st.registry.expire_due()
    verdict = Verifier.for_station(st.registry, st.hsm, st.home.settings(), trust).verify(
        channel, credential)
    if verdict.genuine and verdict.card_serial is not None:
        return verdict.card_serial
    failed = [(c.name, c.detail) for c in verdict.checks if not c.ok] or [
        ("checks", "the card's checks did not complete")]
    record(st.registry, st.hsm, release, kind="refusal", fields=[], resident_id=None,
           record_code=None, card_serial=None,
           detail=f"card not genuine (failed {', '.join(name for name, _ in failed)}); "
                  f"it claimed serial {verdict.card_serial or '?'}")
    raise CardNotGenuineError(verdict.card_serial, failed)
