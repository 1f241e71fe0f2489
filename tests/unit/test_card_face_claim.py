"""`juki card face --with dob` proves the surface alone and names the serial the unsigned
共通AP record claims: a surface of another hierarchy that claims one of this station's
serials is refused (and the refusal recorded), never recorded against that resident."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tools.cli import card_face
from tools.errors import CardNotGenuineError
from tools.station.trust import AnchorInfo

OURS = "100000000000017"


class Store:
    def __init__(self, source: str) -> None:
        self.source = source

    def info(self, _raw: bytes) -> AnchorInfo:
        return AnchorInfo("6100023/001", "extra", self.source, "00")


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[dict]:  # type: ignore[type-arg]
    registry = SimpleNamespace(get=lambda serial: object() if serial == OURS else None)
    monkeypatch.setattr(card_face, "station", lambda: SimpleNamespace(registry=registry, hsm=None))
    seen: list[dict] = []  # type: ignore[type-arg]
    monkeypatch.setattr("tools.audit.provision.record", lambda *a, **k: seen.append(k))
    return seen


def test_attack_a_foreign_surface_claiming_a_station_serial_is_refused(recorded) -> None:  # type: ignore[no-untyped-def]
    reading = SimpleNamespace(anchor="6100023/001")
    with pytest.raises(CardNotGenuineError):
        card_face._refuse_a_false_claim(Store("anchors.toml"), reading, None, OURS)
    assert [r["kind"] for r in recorded] == ["refusal"]
    assert recorded[0]["resident_id"] is None and recorded[0]["card_serial"] is None


def test_a_foreign_serial_or_a_station_anchor_passes(recorded) -> None:  # type: ignore[no-untyped-def]
    reading = SimpleNamespace(anchor="6100023/001")
    card_face._refuse_a_false_claim(Store("anchors.toml"), reading, None, "999999999999999")
    card_face._refuse_a_false_claim(Store("station"), reading, None, OURS)
    assert recorded == []
