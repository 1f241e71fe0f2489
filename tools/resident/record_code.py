"""Station-side use of the resident-registry AP: only a station whose token holds the
card master keys can open its SCP03 channel."""

from __future__ import annotations

from dataclasses import dataclass

from cardlib.apps.issuer import IssuerSession
from cardlib.apps.resident_registry import open_registry
from cardlib.channel import ApduChannel
from cardlib.errors import CardDataError
from cardlib.registry_records import CodeChange
from hsm.diversify import KeySet, card_keys
from hsm.token import Hsm

from ..station.card_keys import token_prfs


@dataclass(frozen=True)
class RegistryApContents:
    card_serial: str
    resident_code: str
    history: list[CodeChange]

    def as_json(self) -> dict[str, object]:
        return {"card_serial": self.card_serial, "resident_code": self.resident_code,
                "history": [c.as_json() for c in self.history]}

    def as_text(self) -> str:
        lines = [f"card {self.card_serial}: resident record code {self.resident_code}"]
        lines += [f"  {c.date} changed from {c.previous_code}: {c.reason}" for c in self.history]
        return "\n".join(lines)


def card_serial(channel: ApduChannel) -> str:
    issuer = IssuerSession(channel)
    issuer.select()
    return issuer.read_serial()


def read_registry_ap(channel: ApduChannel, hsm: Hsm,
                     proven_serial: str | None = None) -> RegistryApContents:
    """The record code and its history. With ``proven_serial`` (the serial the card proved
    by challenge-response) the issuer domain must report that same serial, and only its
    keys open the channel."""
    serial = card_serial(channel)
    if proven_serial is not None and serial != proven_serial:
        raise CardDataError(f"the issuer domain reports serial {serial}, but the card proved "
                            f"itself as {proven_serial}")
    with card_keys(hsm, serial, KeySet.RESIDENT_REGISTRY) as keys:
        registry = open_registry(channel, token_prfs(keys))
        return RegistryApContents(serial, registry.read_code(), registry.read_history())
