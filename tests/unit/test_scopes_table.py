"""docs/scopes.md's table of guarded fields is the code's table (tools/station/scopes.py),
row for row; and a field a command does not list is never silently allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.station.scopes import COMMAND_FIELDS, COMMAND_SCOPES, FIELD_SCOPES, SCOPES, field_scope

DOC = Path(__file__).resolve().parents[2] / "docs" / "scopes.md"


def documented_rows() -> set[tuple[str, str, str, str]]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Fields guarded beyond the command scope", 1)[1].split("\n## ", 1)[0]
    rows = set()
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0] not in ("command", "---"):
            rows.add((cells[0], cells[1], cells[2], cells[3]))
    return rows


def test_the_documented_table_is_the_code_table() -> None:
    code = {(command, field, *FIELD_SCOPES[field])
            for command, fields in COMMAND_FIELDS.items() for field in fields}
    assert documented_rows() == code


def test_every_guarded_field_names_a_known_scope_and_a_real_command() -> None:
    assert set(COMMAND_FIELDS) <= set(COMMAND_SCOPES)
    for field, (scope, policy) in FIELD_SCOPES.items():
        assert scope in SCOPES and policy in ("redact", "refuse"), field
    assert {f for fields in COMMAND_FIELDS.values() for f in fields} == set(FIELD_SCOPES)
    # record codes and the 4 information are never guarded by a lesser scope
    assert FIELD_SCOPES["record_code"][0] == FIELD_SCOPES["code_history"][0] == "read-code"
    assert FIELD_SCOPES["signature_certificate"] == ("read-identity", "refuse")


def test_a_field_not_in_the_table_is_an_error_not_an_allowance() -> None:
    with pytest.raises(KeyError):
        field_scope("card list", "code_history")
    with pytest.raises(KeyError):
        field_scope("verify", "record_code")
