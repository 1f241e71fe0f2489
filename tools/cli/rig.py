"""``juki rig``, ``juki emulator`` and ``juki demo``: the test rig that stands for the
physical world (readers, cards being inserted and pulled) and for the card maker. The
only route into ``tools.rig``; a production station has real readers and no rig."""

from __future__ import annotations

from pathlib import Path

import click

from ..rig import FIRST_VPCD_PORT
from .common import ExitCode, emit, json_option, station


@click.group()
def rig() -> None:
    """Local test rig: SoftHSM token, pcscd + vpcd, emulated cards."""


@rig.command("up")
@click.option("--blank", default=1, show_default=True, help="Blank emulated cards to insert.")
@click.option("--base-port", default=FIRST_VPCD_PORT, show_default=True, help="vpcd port of reader 0.")
@json_option
def rig_up(blank: int, base_port: int, as_json: bool) -> None:
    """Start the rig (idempotent): token, pcscd, N blank cards each in its own reader."""
    from ..rig.rig import Rig

    status = Rig(station().home).up(blank, base_port)
    emit(as_json, status, lambda: _rig_text(status))


@rig.command("status")
@json_option
def rig_status(as_json: bool) -> ExitCode:
    """What the rig is running."""
    from ..rig.rig import Rig

    status = Rig(station().home).status()
    emit(as_json, status, lambda: _rig_text(status))
    return ExitCode.OK if status["pcscd"]["running"] else ExitCode.STATION


@rig.command("down")
@json_option
def rig_down(as_json: bool) -> None:
    """Stop exactly the processes the rig started."""
    from ..rig.rig import Rig

    result = Rig(station().home).down()
    emit(as_json, result, f"stopped {len(result['stopped_pids'])} processes")


@rig.command("insert")
@click.option("--slot", type=int, required=True, help="Rig reader slot (0-based).")
@click.option("--state", "state_path", type=click.Path(path_type=Path), default=None,
              help="Card state file (a new blank card if absent).")
@click.option("--kind", type=click.Choice(["resident", "operator"]), default=None,
              help="What the card is: resident (default for a new card) or PIV operator "
                   "card. An existing --state of another kind is refused.")
@json_option
def rig_insert(slot: int, state_path: Path | None, kind: str | None, as_json: bool) -> None:
    """Insert an emulated card into a rig reader (replacing what is there). Without
    --state: the slot's own card of --kind (cards/card-NN.json resident,
    cards/operator-NN.json operator), made blank if absent."""
    from ..rig.rig import Rig

    card = Rig(station().home).insert_card(slot, state_path, kind)
    emit(as_json, card.as_json(), f"card {card.state} inserted in slot {slot}")


@rig.command("remove")
@click.option("--slot", type=int, required=True)
@json_option
def rig_remove(slot: int, as_json: bool) -> None:
    """Pull the card out of a rig reader."""
    from ..rig.rig import Rig

    Rig(station().home).remove_card(slot)
    emit(as_json, {"slot": slot, "card_present": False}, f"slot {slot} emptied")


def _rig_text(status: dict) -> str:
    pcscd = status["pcscd"]
    lines = [
        f"home:   {status['home']}",
        f"pcscd:  {'running pid ' + str(pcscd['pid']) if pcscd['running'] else 'stopped'}"
        f"{' (private network namespace)' if pcscd['isolated_network'] else ''}",
        f"token:  {'initialised' if status['token_initialised'] else 'absent'}",
    ]
    for card in status["cards"]:
        lines.append(f"slot {card['slot']}: {card['reader']} port {card['port']} "
                     f"{'running' if card['running'] else 'stopped'} {card['state']}")
    return "\n".join(lines)


@click.group()
def emulator() -> None:
    """Emulated cards."""


@emulator.command("run")
@click.option("--state", "state_path", type=click.Path(path_type=Path), required=True,
              help="Card state file (created as a blank card of --kind if absent).")
@click.option("--port", type=int, required=True, help="vpcd port of the reader.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--netns", default=None, help="Network namespace to join (rig isolation).")
@click.option("--kind", type=click.Choice(["resident", "operator"]), default=None,
              help="What the card is: resident (default for a new card) or PIV operator "
                   "card. An existing --state of another kind is refused.")
@json_option
def emulator_run(state_path: Path, port: int, host: str, netns: str | None, kind: str | None,
                 as_json: bool) -> None:
    """Run one card attached to vpcd until it is removed (Ctrl-C or SIGTERM).

    A missing state file becomes a new blank card, made with the keys of the rig's test
    token (never a production token; never on a station in operator mode)."""
    from ..rig.emulators import run_emulated_card

    def inserted(serial: str) -> None:
        emit(as_json, {"card_serial": serial, "host": host, "port": port, "inserted": True},
             f"card {serial} inserted at {host}:{port}")

    run_emulated_card(state_path, port, host, netns, kind, lambda: station().hsm,
                      on_inserted=inserted)


@emulator.command("counterfeit")
@click.option("--from", "source", type=click.Path(path_type=Path, exists=True), required=True)
@click.option("--to", "destination", type=click.Path(path_type=Path), required=True)
@json_option
def emulator_counterfeit(source: Path, destination: Path, as_json: bool) -> None:
    """Copy a card's state with a different authentication key (a forged clone)."""
    from ..rig.emulators import counterfeit

    serial = counterfeit(source, destination)
    emit(as_json, {"card_serial": serial, "state": str(destination)},
         f"counterfeit of card {serial} written to {destination}")


@click.command()
@click.option("--workdir", type=click.Path(path_type=Path), default=None,
              help="Fresh station home for the demo (default: a new temporary directory).")
@click.option("--keep-rig", is_flag=True, help="Leave the rig running at the end.")
@json_option
def demo(workdir: Path | None, keep_rig: bool, as_json: bool) -> None:
    """Rig up, issue a card, verify it, read it, reject a counterfeit, rig down.

    With --json the narration goes to stderr and a summary object to stdout."""
    from ..rig.demo import run_demo

    summary = run_demo(workdir, keep_rig, narrate_to_stderr=as_json)
    emit(as_json, summary, "demo finished: issue -> verify -> full profile read -> counterfeit "
         "rejected -> suspend/resume -> record-code change -> reissue -> operators (enrol, "
         "login, scope denial) -> disclosure report -> edited log row caught at entry "
         f"{summary['tampered_entry_detected']} -> the station service (an operator account "
         "is its client: no token PIN, no --home)")
