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
from .card_os import VirtualCard
from .profiles import blank_resident_card
from .state import StateFile

log = logging.getLogger(__name__)


def load_or_create(path: Path, serial: str | None = None) -> StateFile:
    """Open the card's state file, creating a blank resident card if it does not exist."""
    store = StateFile(path)
    if not path.exists():
        store.save(blank_resident_card(serial))
    return store


def run_card(state_path: Path, port: int, host: str = vpcd.DEFAULT_HOST,
             netns: str | None = None, connect_timeout: float = 10.0,
             on_inserted: Callable[[str], None] | None = None) -> None:
    """Insert the card into the reader at ``port``; returns when the card is removed."""
    store = load_or_create(state_path)
    card = VirtualCard(store.load(), store.save)
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
