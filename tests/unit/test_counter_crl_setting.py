"""Regression: the counter's 4-information operations (move-in, continue-card, change)
took `[crl] base_url` unchecked (a copy of the setting's reader without its validation),
so a URL that issuance refuses went into new signature certificates. They now use the
one reader (``tools.pki.issued.crl_base_url``) and refuse a bad value before any card
I/O or journal entry."""

from __future__ import annotations

import datetime as dt

import pytest

from tools.counter.identity_change import change_identity
from tools.counter.moves import move_in
from tools.errors import StationConfigError
from tools.registry import Registry
from tools.station.pins import Pin

BAD = {"crl": {"base_url": "ftp://crl.example.jp"}}
TODAY = dt.date(2030, 4, 1)


class NoCard:
    """A channel that fails the test if it is used at all."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"the card was used ({name}) before the setting was checked")


def test_a_change_with_a_bad_crl_base_url_touches_nothing(registry: Registry) -> None:
    with pytest.raises(StationConfigError, match=r"\[crl\] base_url"):
        change_identity(NoCard(), None, registry, BAD, Pin("1111"), "name",  # type: ignore[arg-type]
                        "新しい　名前", "marriage", TODAY, today=TODAY)
    assert registry.open_operations() == []


def test_a_move_in_with_a_bad_crl_base_url_touches_nothing(registry: Registry) -> None:
    with pytest.raises(StationConfigError, match=r"\[crl\] base_url"):
        move_in(NoCard(), None, registry, BAD, Pin("1111"), "横浜市中区1-1",  # type: ignore[arg-type]
                "141046", TODAY, today=TODAY)
    assert registry.open_operations() == []
