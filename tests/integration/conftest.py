from __future__ import annotations

from pathlib import Path

import pytest

from tools.rig.rig import Rig, reader_name
from tools.station.home import StationHome


@pytest.fixture(scope="session")
def rig(rig_home: Path) -> Rig:
    return Rig(StationHome(rig_home))


@pytest.fixture
def blank_reader(rig: Rig, tmp_path: Path) -> str:
    """A fresh blank card in rig slot 0; returns the reader's PC/SC name."""
    rig.insert_card(0, tmp_path / "card.json")
    return reader_name(0)
