"""test_log_batches's registry scenarios with the registry's connection a station role (see
test_pg_rules_as_station)."""

from __future__ import annotations

import pytest

from .pg_station import collect_scenarios, station_registry

# what a station does (record_many: entries naming the station); the other tests append
# synthetic entries naming no station, which a station role may not write
collect_scenarios(globals(), __package__, ("test_log_batches",),
                  select=lambda name: "record_many" in name)


@pytest.fixture
def registry(request: pytest.FixtureRequest, fresh_postgres: str):  # type: ignore[no-untyped-def]
    station = station_registry(fresh_postgres, request.node.function.__module__,
                               {"test_log_batches": "station-b"})
    yield station
    station.close()
