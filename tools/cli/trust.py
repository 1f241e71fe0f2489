"""``juki trust``: the trust store, the CV-certificate keys a card's chain may end at."""

from __future__ import annotations

import click

from .common import emit, json_option, trust_store


@click.group()
def trust() -> None:
    """The trust store (anchors of `juki verify`)."""


@trust.command("list")
@json_option
def trust_list(as_json: bool) -> None:
    """The anchors in force: key ID, hierarchy, where it comes from, SHA-256 of the
    modulus. Sets are chosen by `[trust] anchors` in the station config, extra anchors by
    `[trust] extra`."""
    from ..station.trust import SETS

    store = trust_store()
    described = store.describe()
    payload = {"sets": {name: name in store.sets for name in SETS},
               "extra": str(store.extra) if store.extra else None,
               "anchors": [a.as_json() for a in described]}

    def text() -> str:
        lines = [f"sets: {', '.join(store.sets) or '(none)'}"
                 + (f"; extra: {store.extra}" if store.extra else "")]
        lines += [f"{a.key_id:18} {a.hierarchy:17} {a.source:16} {a.modulus_sha256}"
                  + (f"  {a.role}" if a.role else "") for a in described]
        return "\n".join(lines)

    emit(as_json, payload, text)
