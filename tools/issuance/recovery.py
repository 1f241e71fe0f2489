"""Recognising interrupted issuances and putting their cards back to blank.

An ``issuing`` row records its owner (host:pid). When that process is gone (killed,
crashed), the row is an interrupted issuance: it is reported on the next start and
marked ``failed`` when the same card is presented again. A card that got locked
although its issuance was recorded ``failed`` (the lock's answer was lost) is wiped
over SCP03 with its transport keys before it is issued again."""

from __future__ import annotations

import logging
import os
import socket

from cardlib.apps.base import open_secure
from cardlib.apps.issuer import IssuerSession
from cardlib.channel import ApduChannel
from hsm.diversify import KeySet, card_keys
from hsm.token import Hsm

from ..registry import CardRecord, Registry
from ..station.card_keys import token_prfs
from ..station.processes import pid_alive

log = logging.getLogger(__name__)


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(owner: str | None) -> bool:
    """False only when we know the owner is gone: a dead PID on this host, or no owner.
    Another station's process cannot be checked from here: assumed alive."""
    if not owner:
        return False
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname():
        return True
    return pid.isdigit() and pid_alive(int(pid))


def interrupted(registry: Registry) -> list[CardRecord]:
    return [c for c in registry.unfinished() if not owner_alive(c.owner)]


def fail_if_interrupted(registry: Registry, serial: str) -> None:
    card = registry.get(serial)
    if card is not None and card.status == "issuing" and not owner_alive(card.owner):
        log.warning("card %s: issuance by %s was interrupted; marking it failed", serial, card.owner)
        registry.mark_failed(serial, f"interrupted: issuing process {card.owner} is gone")


def fail_interrupted_of_resident(registry: Registry, resident_code: str) -> None:
    """Interrupted issuances for this record code's resident (so that re-running the
    same request is not refused as 'already holds a card')."""
    for card in interrupted(registry):
        if card.resident_code == resident_code:
            fail_if_interrupted(registry, card.serial)


def wipe_card(channel: ApduChannel, hsm: Hsm, serial: str) -> None:
    """SET STATUS → OP_READY in the issuer domain's SCP03 session (transport keys)."""
    with card_keys(hsm, serial, KeySet.ISSUER_TRANSPORT) as transport:
        issuer = open_secure(channel, IssuerSession, token_prfs(transport))
        assert isinstance(issuer, IssuerSession)
        issuer.wipe()
