"""Check digits of the identifiers on resident cards (reference §2).

Each formula lives in exactly one function so that a correction is one edit.
"""

from __future__ import annotations


def _digits(value: str, length: int, what: str) -> list[int]:
    if len(value) != length or not value.isascii() or not value.isdigit():
        raise ValueError(f"{what} must be exactly {length} ASCII digits")
    return [int(c) for c in value]


def individual_number_check_digit(first11: str) -> int:
    """個人番号: 総務省令第85号 art. 5 (weights 6,5,4,3,2,7,6,5,4,3,2 left to right)."""
    digits = _digits(first11, 11, "individual number body")
    weights = (6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
    remainder = sum(d * w for d, w in zip(digits, weights, strict=True)) % 11
    return 0 if remainder <= 1 else 11 - remainder


def is_valid_individual_number(number: str) -> bool:
    try:
        _digits(number, 12, "individual number")
    except ValueError:
        return False
    return individual_number_check_digit(number[:11]) == int(number[11])


def resident_code_check_digit(first10: str) -> int:
    """住民票コード: ASSUMPTION (the 告示 text is not public): modulus 11 with weights
    2..7 repeating from the least significant digit, 0 when the remainder is <= 1."""
    digits = _digits(first10, 10, "resident record code body")
    total = sum(d * (2 + i % 6) for i, d in enumerate(reversed(digits)))
    remainder = total % 11
    return 0 if remainder <= 1 else 11 - remainder


def is_valid_resident_code(code: str) -> bool:
    try:
        _digits(code, 11, "resident record code")
    except ValueError:
        return False
    return resident_code_check_digit(code[:10]) == int(code[10])


def municipality_check_digit(first5: str) -> int:
    """全国地方公共団体コード: weights 6,5,4,3,2; check = (11 - sum mod 11) mod 10."""
    digits = _digits(first5, 5, "municipality code body")
    total = sum(d * w for d, w in zip(digits, (6, 5, 4, 3, 2), strict=True))
    return (11 - total % 11) % 10


def is_valid_municipality_code(code: str) -> bool:
    try:
        _digits(code, 6, "municipality code")
    except ValueError:
        return False
    return municipality_check_digit(code[:5]) == int(code[5])
