"""The collation numbers' date forms (RC §4.2, §11.1 D).

``wareki_yymmdd``: a date as YYMMDD with YY the year of the Japanese era (the era itself
is not encoded), eras changing by day: 1989-01-07 is 昭和64, 1989-01-08 平成1, 2019-04-30
平成31, 2019-05-01 令和1. RC names 昭和 from 1926-12-25; residents born earlier exist, so
大正 (from 1912-07-30) and 明治 (from 1873-01-01, when Japan adopted the Gregorian calendar:
明治6) are supported too (ours); earlier dates are refused.

``collation_b``: 照合番号B = wareki YYMMDD of birth + the Gregorian expiry year (4 digits)
+ the 4-digit security code printed on the card: 14 ASCII digits.
"""

from __future__ import annotations

import datetime as dt

ERAS = (  # (first day, name), newest first
    (dt.date(2019, 5, 1), "令和"),
    (dt.date(1989, 1, 8), "平成"),
    (dt.date(1926, 12, 25), "昭和"),
    (dt.date(1912, 7, 30), "大正"),
    (dt.date(1868, 1, 25), "明治"),
)
EARLIEST = dt.date(1873, 1, 1)  # the Gregorian calendar in Japan (明治6)
SECURITY_CODE_LENGTH = 4


def era_of(date: dt.date) -> tuple[str, int]:
    """The era's name and the year within it (1 = 元年)."""
    if not isinstance(date, dt.date):
        raise ValueError("date must be a datetime.date")
    if date < EARLIEST:
        raise ValueError(f"date {date.isoformat()} is before {EARLIEST.isoformat()} (Japanese "
                         "Gregorian calendar)")
    for start, name in ERAS:
        if date >= start:
            return name, date.year - start.year + 1
    raise AssertionError("unreachable: EARLIEST is inside 明治")


def wareki_yymmdd(date: dt.date) -> str:
    """``YYMMDD`` with ``YY`` the era year (two digits)."""
    _, year = era_of(date)
    if year > 99:
        raise ValueError(f"date {date.isoformat()}: era year {year} does not fit two digits")
    return f"{year:02d}{date.month:02d}{date.day:02d}"


def collation_b(birth: dt.date, expiry_year: int | dt.date, security_code: str) -> str:
    """照合番号B (14 digits). ``expiry_year`` may be given as the expiry date."""
    year = expiry_year.year if isinstance(expiry_year, dt.date) else expiry_year
    if isinstance(year, bool) or not isinstance(year, int) or not 1000 <= year <= 9999:
        raise ValueError("expiry year must be a 4-digit year")
    if not isinstance(security_code, str) or len(security_code) != SECURITY_CODE_LENGTH \
            or not security_code.isascii() or not security_code.isdigit():
        raise ValueError("security code must be 4 ASCII digits")  # never echo the secret
    return f"{wareki_yymmdd(birth)}{year:04d}{security_code}"
