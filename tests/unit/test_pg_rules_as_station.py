"""The registry's own scenarios, run again with the registry's connection a station
role on a migrated PostgreSQL registry: every statement the station code runs must be
granted (a missing grant fails here), and every rule the code checks still holds.

The scenarios are the registry-level unit tests (their functions taking ``registry``),
collected here a second time; this module's ``registry`` fixture replaces the
conftest's for them. Scenario modules with a fixture of the same name as another's
have a module of their own (``test_pg_rules_as_station_*``)."""

from __future__ import annotations

import pytest

from .pg_station import collect_scenarios, station_registry

SCENARIOS = ("test_registry", "test_registry_moves", "test_registry_operators",
             "test_registry_certificates", "test_counter_renewal", "test_counter_pin_reset",
             "test_counter_expiring_window", "test_counter_crl_setting", "test_audit_events")
collect_scenarios(globals(), __package__, SCENARIOS)


@pytest.fixture
def registry(request: pytest.FixtureRequest, fresh_postgres: str):  # type: ignore[no-untyped-def]
    station = station_registry(fresh_postgres, request.node.function.__module__,
                               {"test_audit_events": "station-u"})
    yield station
    station.close()
