"""What both bench scripts need: a fresh station home with a rig of its own and the
station keys in its token, brought down afterwards."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hsm.station_keys import ensure_station_keys  # noqa: E402
from tools.rig.rig import Rig  # noqa: E402
from tools.service.context import Station  # noqa: E402


@contextmanager
def bench_station(blank: int, prefix: str) -> Iterator[tuple[Station, Rig, Path]]:
    home = Path(tempfile.mkdtemp(prefix=prefix))
    station = Station(home)
    rig = Rig(station.home)
    rig.up(blank=blank)
    try:
        ensure_station_keys(station.hsm)
        yield station, rig, home
    finally:
        rig.down()
