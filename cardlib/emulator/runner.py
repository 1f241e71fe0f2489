"""Run one virtual card from a state file, attached to a vpcd port."""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from . import vpcd
from .card_core import CardOs
from .piv_card import PivCard
from .resident_card_os import ResidentCardOs
from .state import CardState, StateFile

log = logging.getLogger(__name__)


def open_state(path: Path) -> StateFile:
    """The card's state file; cards are made (with their keys) before they run."""
    if not path.exists():
        raise FileNotFoundError(f"no card state at {path}: make the card first "
                                "(`juki rig insert` or `juki emulator run` do)")
    return StateFile(path)


def card_for(state: CardState, persist: Callable[[CardState], None]) -> CardOs:
    """The card OS for a state: a PIV operator card, or the resident card OS."""
    if state.profile == "operator":
        return PivCard(state, persist)
    return ResidentCardOs(state, persist)


def run_card(state_path: Path, port: int, host: str = vpcd.DEFAULT_HOST,
             netns: str | None = None, connect_timeout: float = 10.0,
             on_inserted: Callable[[str], None] | None = None) -> None:
    """Insert the card into the reader at ``port``; returns when the card is removed."""
    store = open_state(state_path)
    card = card_for(store.load(), store.save)
    if netns:
        vpcd.enter_network_namespace(netns)
    sock = vpcd.connect(host, port, connect_timeout)

    def remove_card(signum: int, _frame: object) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sys.exit(0)

    signal.signal(signal.SIGTERM, remove_card)
    log.info("card %s inserted at %s:%d", card.state.serial, host, port)
    if on_inserted is not None:
        on_inserted(card.state.serial)
    try:
        vpcd.serve(card, sock)
    finally:
        sock.close()
