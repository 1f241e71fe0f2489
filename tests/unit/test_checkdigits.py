import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardlib.checkdigits import (
    individual_number_check_digit,
    is_valid_individual_number,
    is_valid_municipality_code,
    is_valid_resident_code,
    municipality_check_digit,
    resident_code_check_digit,
)


@pytest.mark.parametrize("number", ["123456789018", "621498320257", "983205673214"])
def test_published_individual_numbers(number: str) -> None:
    assert is_valid_individual_number(number)


@pytest.mark.parametrize("code", ["131016", "131041", "271004", "011002"])
def test_municipality_codes(code: str) -> None:
    assert is_valid_municipality_code(code)


@pytest.mark.parametrize("bad", ["12345678901", "1234567890181", "12345678901a", "１２３４５６７８９０１８"])
def test_malformed_individual_numbers(bad: str) -> None:
    assert not is_valid_individual_number(bad)


digits = st.text("0123456789", min_size=1, max_size=1)


def _remainder(body: str) -> int:
    return sum(int(d) * w for d, w in zip(body, (6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2), strict=True)) % 11


@given(st.text("0123456789", min_size=11, max_size=11), st.integers(0, 10), digits)
def test_individual_number_detects_single_digit_errors(body: str, pos: int, new: str) -> None:
    """Weights 2..7 are coprime with 11, so a substitution always moves the remainder;
    it goes unnoticed only between remainders 0 and 1 (both give check digit 0)."""
    changed = body[:pos] + new + body[pos + 1:]
    number = body + str(individual_number_check_digit(body))
    assert is_valid_individual_number(number)
    if changed == body:
        return
    folded = {_remainder(body), _remainder(changed)} == {0, 1}
    assert is_valid_individual_number(changed + number[11]) == folded


@given(st.text("0123456789", min_size=10, max_size=10))
def test_resident_code_check_digit_round_trip(body: str) -> None:
    assert is_valid_resident_code(body + str(resident_code_check_digit(body)))
    wrong = (resident_code_check_digit(body) + 1) % 10
    assert not is_valid_resident_code(body + str(wrong))


@given(st.text("0123456789", min_size=5, max_size=5))
def test_municipality_round_trip(body: str) -> None:
    assert is_valid_municipality_code(body + str(municipality_check_digit(body)))
