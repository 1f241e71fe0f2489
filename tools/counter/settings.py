"""The counter's deadlines (``[counter]`` in the station settings), with the defaults of
the current rules (docs/counter.md):

- ``move_in_notice_days`` (14): the move-in is notified within 14 days of moving in;
- ``move_out_grace_days`` (30): the move-in within 30 days of the planned move-out date;
- ``continued_use_days`` (90): the card's continued use within 90 days of the move-in,
  or the card lapses;
- ``renewal_window_days`` (90): certificates this close to expiry may be renewed;
- ``move_out_advance_days`` (14): a move-out is notified at most this many days before
  its planned date (a date far ahead would keep the move open, and the move-in's
  30-day rule from ever biting, for years).

A refusal under one of them names the rule and the setting key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from ..errors import StationConfigError

SECTION = "counter"


@dataclass(frozen=True)
class CounterSettings:
    move_in_notice_days: int = 14
    move_out_grace_days: int = 30
    continued_use_days: int = 90
    renewal_window_days: int = 90
    move_out_advance_days: int = 14

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> CounterSettings:
        """From the station settings (``home.settings()``); each value a whole number of
        days, 1 to 3650. A bad one is a ``StationConfigError`` naming its key."""
        raw = settings.get(SECTION, {})
        if not isinstance(raw, Mapping):
            raise StationConfigError(f"[{SECTION}] must be a table")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise StationConfigError(f"[{SECTION}] {unknown[0]} is not a known setting "
                                     f"(known: {', '.join(sorted(known))})")
        values: dict[str, int] = {}
        for key, value in raw.items():
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 3650:
                raise StationConfigError(f"[{SECTION}] {key} must be a whole number of days "
                                         f"from 1 to 3650, not {value!r}")
            values[key] = value
        return cls(**values)
