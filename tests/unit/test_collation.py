"""和暦 YYMMDD and 照合番号B (RC §4.2, §11.1 D)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardlib.collation import collation_b, era_of, wareki_yymmdd


@pytest.mark.parametrize(("date", "era", "text"), [
    (dt.date(1980, 2, 17), "昭和", "550217"),  # RC §11.1 D: the surface 0011 value
    (dt.date(1926, 12, 25), "昭和", "011225"),
    (dt.date(1926, 12, 24), "大正", "151224"),
    (dt.date(1989, 1, 7), "昭和", "640107"),
    (dt.date(1989, 1, 8), "平成", "010108"),
    (dt.date(2019, 4, 30), "平成", "310430"),
    (dt.date(2019, 5, 1), "令和", "010501"),
    (dt.date(2026, 12, 3), "令和", "081203"),
    (dt.date(1912, 7, 30), "大正", "010730"),
    (dt.date(1912, 7, 29), "明治", "450729"),
    (dt.date(1873, 1, 1), "明治", "060101"),
])
def test_era_boundaries(date: dt.date, era: str, text: str) -> None:
    assert era_of(date)[0] == era
    assert wareki_yymmdd(date) == text


def test_sample_d() -> None:
    value = collation_b(dt.date(1980, 2, 17), 2035, "2285")
    assert value == "55021720352285"
    assert value.encode("ascii") == bytes.fromhex("3535303231373230333532323835")
    assert collation_b(dt.date(1980, 2, 17), dt.date(2035, 2, 17), "2285") == value


@pytest.mark.parametrize(("args", "message"), [
    ((dt.date(1980, 2, 17), 35, "2285"), "expiry year"),
    ((dt.date(1980, 2, 17), "2035", "2285"), "expiry year"),
    ((dt.date(1980, 2, 17), True, "2285"), "expiry year"),
    ((dt.date(1980, 2, 17), 2035, "228"), "security code"),
    ((dt.date(1980, 2, 17), 2035, "22a5"), "security code"),
    ((dt.date(1980, 2, 17), 2035, "２２８５"), "security code"),
    ((dt.date(1872, 12, 31), 2035, "2285"), "before 1873-01-01"),
    (("1980-02-17", 2035, "2285"), "datetime.date"),
])
def test_bad_input_is_named(args, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message) as info:
        collation_b(*args)
    assert args[2] not in str(info.value)  # the secret is never echoed


def test_era_year_beyond_two_digits() -> None:
    with pytest.raises(ValueError, match="two digits"):
        wareki_yymmdd(dt.date(2118, 1, 1))  # 令和100


@given(st.dates(dt.date(1873, 1, 1), dt.date(2117, 12, 31)),
       st.integers(1000, 9999), st.from_regex(r"\A[0-9]{4}\Z"))
def test_shape(birth: dt.date, year: int, code: str) -> None:
    value = collation_b(birth, year, code)
    assert len(value) == 14 and value.isdigit()
    assert value[2:6] == birth.strftime("%m%d") and value[6:10] == str(year)
    assert value[10:] == code
    _, era_year = era_of(birth)
    assert int(value[:2]) == era_year and 1 <= era_year <= 99
