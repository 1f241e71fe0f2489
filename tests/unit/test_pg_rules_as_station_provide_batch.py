"""test_provide_batch's registry scenarios with the registry's connection a station role (see
test_pg_rules_as_station)."""

from __future__ import annotations

import pytest

from .pg_station import collect_scenarios, station_registry

collect_scenarios(globals(), __package__, ("test_provide_batch",))


@pytest.fixture
def registry(request: pytest.FixtureRequest, fresh_postgres: str):  # type: ignore[no-untyped-def]
    station = station_registry(fresh_postgres, request.node.function.__module__,
                               {"test_provide_batch": "station-b"})
    yield station
    station.close()
