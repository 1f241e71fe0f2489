from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.rig.rig import Rig, reader_name
from tools.rig.service import Service, start_service
from tools.station.home import StationHome


@pytest.fixture(scope="module")
def service(rig_home: Path) -> Iterator[Service]:
    """The station service on the rig's home, one per test module; its log must hold no
    traceback when it stops."""
    running = start_service(rig_home)
    yield running
    log = running.stop()
    assert "Traceback" not in log, log


@pytest.fixture(scope="session")
def rig(rig_home: Path) -> Rig:
    return Rig(StationHome(rig_home))


@pytest.fixture
def blank_reader(rig: Rig, tmp_path: Path) -> str:
    """A fresh blank card in rig slot 0; returns the reader's PC/SC name."""
    rig.insert_card(0, tmp_path / "card.json")
    return reader_name(0)
