"""The counter's deadline settings: defaults of the current rules, a bad value refused
naming its key."""

from __future__ import annotations

import pytest

from tools.counter.settings import CounterSettings
from tools.errors import StationConfigError


def test_defaults_are_the_current_rules() -> None:
    settings = CounterSettings.from_settings({})
    assert (settings.move_in_notice_days, settings.move_out_grace_days,
            settings.continued_use_days, settings.renewal_window_days) == (14, 30, 90, 90)


def test_values_from_the_counter_table() -> None:
    settings = CounterSettings.from_settings({"counter": {"move_in_notice_days": 7,
                                                          "continued_use_days": 60}})
    assert settings.move_in_notice_days == 7 and settings.continued_use_days == 60
    assert settings.move_out_grace_days == 30


@pytest.mark.parametrize("key, value", [("move_in_notice_days", 0), ("move_out_grace_days", -3),
                                        ("continued_use_days", "90"), ("renewal_window_days", 1.5),
                                        ("continued_use_days", True), ("move_in_notice_days", 4000)])
def test_a_bad_value_names_its_key(key: str, value: object) -> None:
    with pytest.raises(StationConfigError, match=f"\\[counter\\] {key} must be a whole number"):
        CounterSettings.from_settings({"counter": {key: value}})


def test_an_unknown_key_is_refused() -> None:
    with pytest.raises(StationConfigError, match="move_in_days is not a known setting"):
        CounterSettings.from_settings({"counter": {"move_in_days": 14}})
    with pytest.raises(StationConfigError, match="must be a table"):
        CounterSettings.from_settings({"counter": 14})
