import json
from pathlib import Path

import pytest

from tools.errors import RequestError
from tools.issuance.request import load_request, parse_request

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "requests"
GOOD = json.loads((FIXTURES / "resident-yamada.json").read_text(encoding="utf-8"))


def test_fixture_requests_are_valid() -> None:
    for path in FIXTURES.glob("*.json"):
        load_request(path)


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"name": None}, "name", "required"),
        ({"resident_code": "28374650192"}, "resident_code", "check digit"),
        ({"resident_code": "2837465019"}, "resident_code", "11 digits"),
        ({"municipality_code": "131017"}, "municipality_code", "check digit"),
        ({"individual_number": "123456789019"}, "individual_number", "check digit"),
        ({"birth_date": "1985-02-30"}, "birth_date", "calendar date"),
        ({"birth_date": "2999-01-01"}, "birth_date", "past"),
        ({"birth_date": "19850412"}, "birth_date", "YYYY-MM-DD"),
        ({"sex": "3"}, "sex", "one of"),
        ({"sex": 1}, "sex", "one of"),
        ({"name": "山" * 61}, "name", "at most 180 bytes"),
        ({"address": ""}, "address", "non-empty"),
        ({"name": "a\nb"}, "name", "control"),
        ({"nickname": "x"}, "nickname", "not a known field"),
    ],
)
def test_rejections_name_field_and_rule(change: dict, field: str, rule: str) -> None:
    raw = {k: v for k, v in (GOOD | change).items() if v is not None}
    with pytest.raises(RequestError) as info:
        parse_request(raw)
    assert info.value.field == field
    assert rule in info.value.rule


def test_malformed_json_names_position(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"name": "x",', encoding="utf-8")
    with pytest.raises(RequestError, match="malformed JSON at line 1"):
        load_request(path)


def test_request_repr_hides_identity() -> None:
    assert "山田" not in repr(parse_request(GOOD))
