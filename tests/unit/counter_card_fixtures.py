"""An issued card (the test transport keys, the 住基AP's own keys loaded) for the counter
session tests, and what they compare: a snapshot of everything durable on the card."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cardlib.apdu import CommandApdu
from cardlib.channel import ApduChannel
from cardlib.constants import Aid, LifeCycle
from cardlib.emulator.resident_card_os import ResidentCardOs
from cardlib.emulator.state import CardState
from tests.helpers import card_channel, personalising, rsa_key_pool
from tests.unit.test_emulator_real_card import _personalise
from tests.unit.test_registry_ap import REGISTRY, load_registry_keys

PIN, JPKI_AUTH, JPKI_SIGN = "1234", "1234", "ABC123"  # as tests.unit.test_emulator_real_card
AIDS = {"common": Aid.COMMON, "info": Aid.CARD_INFO, "surface": Aid.CARD_SURFACE,
        "jpki": Aid.JPKI, "juki": Aid.RESIDENT_REGISTRY, "isd": Aid.ISSUER_SECURITY_DOMAIN}
Key = tuple[str, ...]

__all__ = ["REGISTRY", "issued_counter_text", "pooled_rsa_keys"]


@pytest.fixture(scope="module")
def issued_counter_text() -> str:
    card, plain = card_channel()
    load_registry_keys(plain)
    _personalise(plain)
    assert card.state.life_cycle == LifeCycle.SECURED
    return card.state.to_json()


@pytest.fixture(scope="module")
def pooled_rsa_keys() -> Iterator[None]:
    """On-card RSA generation is slow; the random-APDU test reuses a few keys."""
    with rsa_key_pool(2):
        yield


def fresh(text: str) -> tuple[ResidentCardOs, ApduChannel]:
    return card_channel(ResidentCardOs(CardState.from_json(text)))


def counter(plain: ApduChannel) -> ApduChannel:
    """The issuer domain's SCP03 level-33 session (transport keys): on an issued card,
    the counter session."""
    return personalising(plain)


def send(channel: ApduChannel, cla: int, ins: int, p1: int, p2: int, data: bytes = b"",
         ne: int | None = None) -> tuple[bytes, int]:
    return channel.transceive(CommandApdu(cla, ins, p1, p2, data, ne))


def select(channel: ApduChannel, ap: str, fid: int | None = None) -> None:
    assert send(channel, 0x00, 0xA4, 0x04, 0x0C, AIDS[ap])[1] == 0x9000
    if fid is not None:
        assert send(channel, 0x00, 0xA4, 0x02, 0x0C, fid.to_bytes(2, "big"))[1] == 0x9000


def snapshot(card: ResidentCardOs) -> dict[Key, object]:
    """Everything durable: EF contents and records, PIN values and counters, keys."""
    state = card.state
    out: dict[Key, object] = {("life_cycle",): state.life_cycle,
                              ("data_objects",): dict(state.data_objects)}
    for aid, app in state.apps.items():
        for fid, entry in app.files.items():
            if entry.records is None:
                out[(aid, "file", fid)] = entry.data
            for number, record in enumerate(entry.records or (), start=1):
                out[(aid, "record", fid, str(number))] = record
        for fid, pin in app.pins.items():
            out[(aid, "pin", fid)] = (pin.salt, pin.digest, pin.tries_left)
        for fid, pem in app.keys.items():
            out[(aid, "key", fid)] = pem
        out[(aid, "scp")] = vars(app.scp) if app.scp else None
    return out


def changed(before: dict[Key, object], card: ResidentCardOs) -> set[Key]:
    after = snapshot(card)
    return {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}


def tries(card: ResidentCardOs) -> dict[Key, int]:
    return {(aid, fid): pin.tries_left for aid, app in card.state.apps.items()
            for fid, pin in app.pins.items()}
