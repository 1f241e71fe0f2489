"""The request CSV of `provide batch`: both forms, every refusal naming its row and
column, the digest of exactly the bytes read, and hypothesis fuzzing: any bytes either
parse into checked rows or raise ``RequestError`` (never anything else)."""

from __future__ import annotations

import hashlib
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tools.audit.batch_request import check, parse
from tools.errors import RequestError
from tools.registry import new_record_code

CODE = "28374650191"


def rows(text: str | bytes) -> list:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return list(parse(io.BytesIO(data)))


def test_code_form_with_ref_and_known_as_of() -> None:
    got = rows(f"\ufeffknown_as_of,record_code,ref\n2026-01-31,{CODE},A-1\n\n,{CODE},\n")
    assert [(r.number, r.record_code, r.ref, str(r.known_as_of)) for r in got] == [
        (1, CODE, "A-1", "2026-01-31"), (2, CODE, "", "None")]


def test_four_form_quoted_fields() -> None:
    got = rows('name,birth_date,sex,address\n"山田　太郎","1985-04-12",1,"東京都, 1番"\n')
    assert got[0].four == ("山田　太郎", "1985-04-12", "1", "東京都, 1番")


@pytest.mark.parametrize(("text", "where", "rule"), [
    ("", "header", "empty"),
    ("code\n1\n", "header, column 'code'", "unknown column"),
    ("record_code,record_code\n", "header, column 'record_code'", "twice"),
    ("record_code,name,birth_date,sex,address\n", "header", "not both"),
    ("name,birth_date,sex\n", "header", "not part"),
    ("ref\nx\n", "header", "needs record_code"),
    (f"record_code\n{CODE}\n2837465019\n", "row 2 (line 3), column record_code", "11-digit"),
    (f"record_code\n{CODE[:10]}2\n", "row 1 (line 2), column record_code", "check digit"),
    (f"record_code\n{CODE},x\n", "row 1 (line 2)", "2 fields"),
    (f"record_code,known_as_of\n{CODE},2026-02-30\n", "row 1 (line 2), column known_as_of",
     "not a date"),
    ("name,birth_date,sex,address\nA,1985-04-12,3,B\n", "row 1 (line 2), column sex", "one of"),
    ("name,birth_date,sex,address\n,1985-04-12,1,B\n", "row 1 (line 2), column name", "empty"),
    ("name,birth_date,sex,address\nA\x07,1985-04-12,1,B\n", "row 1 (line 2), column name",
     "control"),
    ("name,birth_date,sex,address\nA,1985-04-12,1," + "x" * 201 + "\n",
     "row 1 (line 2), column address", "longer than 200"),
    ("name,birth_date,sex,address\nA,85-04-12,1,B\n", "row 1 (line 2), column birth_date",
     "not a date"),
    (b"record_code\n\xff\n", "row 1", "not UTF-8"),
    (f'record_code\n"{CODE}\n', "row 1", "not valid CSV"),
    (f"record_code\n{CODE}\x00\n", "row 1 (line 2), column record_code", "11-digit"),
])
def test_refusals_name_row_and_column(text: str | bytes, where: str, rule: str) -> None:
    with pytest.raises(RequestError) as refused:
        rows(text)
    assert refused.value.field == where and rule in refused.value.rule


def test_check_counts_rows_and_hashes_every_byte() -> None:
    data = ("record_code\n" + "".join(f"{new_record_code()}\n" for _ in range(3000))).encode()
    assert check(io.BytesIO(data)) == (3000, hashlib.sha256(data).hexdigest())


def test_parse_streams() -> None:
    """The parser yields rows before it has read the whole (here endless) input."""
    class Endless(io.RawIOBase):
        def __init__(self) -> None:
            self.pending, self.served = b"record_code\n", 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def,override]
            while len(self.pending) < len(buffer):
                self.pending += f"{CODE}\n".encode()
            buffer[:], self.pending = self.pending[:len(buffer)], self.pending[len(buffer):]
            self.served += len(buffer)
            return len(buffer)

    source = Endless()
    generator = parse(io.BufferedReader(source))
    got = [next(generator) for _ in range(5000)]
    assert got[-1].number == 5000 and got[-1].record_code == CODE
    assert source.served < 1 << 20  # read as it goes, never the whole


CELLS = st.one_of(st.text(max_size=30), st.sampled_from(
    [CODE, "1985-04-12", "1", "2", "9", "", "2026-13-01", "山田", "\x00", '"', ","]))
HEADERS = st.lists(st.sampled_from(["record_code", "name", "birth_date", "sex", "address",
                                    "ref", "known_as_of", "x"]), min_size=1, max_size=6)


@settings(max_examples=400, deadline=None)
@given(HEADERS, st.lists(st.lists(CELLS, max_size=7), max_size=6))
def test_fuzz_structured_csv(header: list[str], body: list[list[str]]) -> None:
    out = io.StringIO()
    import csv

    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(body)
    _parses_or_refuses(out.getvalue().encode("utf-8"))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_raw_bytes(data: bytes) -> None:
    _parses_or_refuses(b"record_code,ref\n" + data)
    _parses_or_refuses(data)


def _parses_or_refuses(data: bytes) -> None:
    try:
        parsed = list(parse(io.BytesIO(data)))
    except RequestError as refused:
        assert refused.field and refused.rule
        return
    for row in parsed:  # what parses is checked: a valid code, or all 4 information
        if row.record_code is not None:
            assert len(row.record_code) == 11 and row.record_code.isdigit()
        else:
            assert row.four is not None and row.four[2] in ("1", "2", "9") and all(row.four)
    count, _ = check(io.BytesIO(data))
    assert count == len(parsed)
