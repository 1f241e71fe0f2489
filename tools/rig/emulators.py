"""Emulated cards as the rig runs them: one process per card, attached to a vpcd reader."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cardlib.emulator.forgery import counterfeit_with_new_key
from cardlib.emulator.runner import run_card
from hsm.token import Hsm

from .card_maker import card_kind, manufacture


def run_emulated_card(state_path: Path, port: int, host: str, netns: str | None,
                      kind: str | None, token: Callable[[], Hsm],
                      on_inserted: Callable[[str], None]) -> None:
    """Run the card at ``state_path`` until it is removed; a missing state file becomes
    a new blank card of ``kind``, made with the keys of ``token()`` (opened only then,
    and only a rig's marked test token lets them out). An existing card of another kind
    than ``kind`` is refused."""
    kind = card_kind(state_path, kind)
    if not state_path.exists():
        manufacture(kind, token(), state_path)
    run_card(state_path, port, host, netns, on_inserted=on_inserted)


def counterfeit(source: Path, destination: Path) -> str:
    """A forged clone of the card at ``source`` (new authentication key); its serial."""
    return counterfeit_with_new_key(source, destination)
