"""`provide batch` below the CLI, on SQLite and PostgreSQL, with the token's MAC and head
as stand-ins (tests/cli/test_provide_batch.py runs it in SoftHSM): each answer (match,
changed-since with the current code and the day, no-match), one entry per row that gives
anything plus one per chunk for its no-match rows, the result written only for committed
chunks, and a token fault mid-batch that leaves exactly the chunks before it."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from pathlib import Path

import pytest

from tools.audit import batch_provision, log, provision
from tools.audit.batch_provision import BatchInterruptedError, FileResult, provide_batch
from tools.audit.batch_request import check
from tools.audit.provision import Release
from tools.registry import Registry, new_record_code

from .fake_log_keys import FakeAttester

RELEASE = Release("station-b", "Asia/Tokyo", "alice", "NENKIN", "B1-57")
FOUR = {"name": "山田　太郎", "birth_date": "1985-04-12", "sex": "1",
        "address": "東京都千代田区霞が関二丁目1番2号"}


class Token:
    def __init__(self) -> None:
        self.macs, self.fail_after = 0, None  # type: ignore[var-annotated]


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> Token:
    fake = Token()

    def mac(_hsm, _version, message, _role):  # type: ignore[no-untyped-def]
        if fake.fail_after is not None and fake.macs >= fake.fail_after:
            raise RuntimeError("CKR_DEVICE_REMOVED")
        fake.macs += 1
        return hashlib.sha256(message).digest()[:16]

    monkeypatch.setattr(provision, "mac", mac)
    monkeypatch.setattr(provision, "Attester", FakeAttester)
    monkeypatch.setattr(provision, "current_version", lambda _hsm, _role: 1)
    monkeypatch.setattr(provision.anchors, "write_head", lambda *_args: None)
    return fake


def resident(registry: Registry, serial: str, **identity: str) -> str:
    code = new_record_code()
    registry.begin_issuance(serial, "resident", code, "131016", dt.date(2035, 1, 1))
    registry.complete_issuance(serial, b"cert", identity={**FOUR, **identity})
    return code


def run(registry: Registry, tmp_path: Path, text: str, chunk: int = 1000):  # type: ignore[no-untyped-def]
    request = io.BytesIO(text.encode("utf-8"))
    _rows, digest = check(request)
    request.seek(0)
    out = tmp_path / "result.csv"
    summary = provide_batch(registry, None, RELEASE, request, digest,  # type: ignore[arg-type]
                            FileResult(out), lambda _n: None, chunk)
    return summary, list(csv.DictReader(out.open(encoding="utf-8"))), digest


def entries(registry: Registry) -> list[dict]:
    return [json.loads(r[0]) for r in registry.connection().execute(
        "SELECT entry FROM provision_log ORDER BY idx")]


def test_codes_match_change_and_miss(registry: Registry, token: Token, tmp_path: Path) -> None:
    a = resident(registry, "S1")
    b = resident(registry, "S2", name="佐藤　花子", sex="2")
    _, b_new = registry.reserve_new_code(b)
    registry.commit_code_change(registry.resident_of_code(b)[0], b, b_new, "転居")  # type: ignore[index]
    unknown = new_record_code()
    summary, result, digest = run(registry, tmp_path,
                                  f"ref,record_code\nr1,{a}\nr2,{b}\nr3,{unknown}\n")
    today = dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=9))).date()
    assert [(r["row"], r["ref"], r["status"], r["record_code"], r["name"], r["changed_on"])
            for r in result] == [
        ("1", "r1", "match", a, FOUR["name"], ""),
        ("2", "r2", "changed-since", b_new, "佐藤　花子", today.isoformat()),
        ("3", "r3", "no-match", "", "", "")]
    logged = entries(registry)
    assert [int(r["entry"]) for r in result] == [0, 1, 2]
    assert [(e["kind"], e["fields"], e["record_code"], e["detail"]) for e in logged] == [
        ("provision", ["address", "birth_date", "name", "record_code", "sex"], a,
         f"batch request sha256:{digest} row 1"),
        ("provision", ["address", "birth_date", "changed_on", "name", "record_code", "sex"],
         b_new, f"batch request sha256:{digest} row 2"),
        ("provision", [], None,
         f"batch request sha256:{digest} rows 1-3: 1 without a match (nothing about a "
         "resident)")]
    assert logged[0]["resident_id"] == registry.resident_of_code(a)[0]  # type: ignore[index]
    assert "山田" not in json.dumps(logged, ensure_ascii=False)  # no names in the log
    assert (summary.rows, summary.matched, summary.changed_since, summary.no_match,
            summary.entries, summary.first_index, summary.last_index) == (3, 1, 1, 1, 3, 0, 2)
    assert token.macs == 1  # one chunk, one group commit


def test_four_information_and_known_as_of(registry: Registry, token: Token,
                                          tmp_path: Path) -> None:
    code = resident(registry, "S1")
    resident(registry, "S2", name="同姓　同名")
    resident(registry, "S3", name="同姓　同名")  # two people with the same 4 information
    header = "name,birth_date,sex,address,known_as_of\n"
    line = f"{FOUR['name']},{FOUR['birth_date']},1,{FOUR['address']}"
    twin = f"同姓　同名,{FOUR['birth_date']},1,{FOUR['address']}"
    _, result, _ = run(registry, tmp_path, header + f"{line},2000-01-01\n{line},\n{twin},\n"
                       f"{FOUR['name']},1985-04-13,1,{FOUR['address']},\n")
    assert [(r["status"], r["record_code"]) for r in result] == [
        ("changed-since", code), ("match", code), ("no-match", ""), ("no-match", "")]
    assert result[0]["changed_on"] > "2000-01-01"


def test_chunks_commit_separately(registry: Registry, token: Token, tmp_path: Path) -> None:
    codes = [resident(registry, f"S{i}") for i in range(5)]
    summary, result, _ = run(registry, tmp_path,
                             "record_code\n" + "".join(f"{c}\n" for c in codes), chunk=2)
    assert token.macs == 3 and summary.entries == 5
    assert [r["entry"] for r in result] == ["0", "1", "2", "3", "4"]
    assert int(registry.connection().execute("SELECT count(*) FROM log_batches")
               .fetchone()[0]) == 3


def test_token_fault_mid_batch_releases_only_committed_chunks(
        registry: Registry, token: Token, tmp_path: Path) -> None:
    codes = [resident(registry, f"S{i}") for i in range(5)]
    token.fail_after = 1  # the second chunk's MAC fails
    request = io.BytesIO(("record_code\n" + "".join(f"{c}\n" for c in codes)).encode())
    _, digest = check(request)
    request.seek(0)
    out = tmp_path / "result.csv"
    with pytest.raises(BatchInterruptedError) as failed:
        provide_batch(registry, None, RELEASE, request, digest,  # type: ignore[arg-type]
                      FileResult(out), lambda _n: None, 2)
    message = str(failed.value)
    assert "stopped at row 3" in message and "rows 1-2 were provided" in message
    assert not out.exists()  # never a half-written OUT
    partial = list(csv.DictReader((tmp_path / "result.csv.partial").open()))
    assert [r["record_code"] for r in partial] == codes[:2]
    assert log.size(registry.connection()) == 2
    assert (tmp_path / "result.csv.partial").stat().st_mode & 0o077 == 0


class FullDisk(FileResult):
    """The result file's disk fills after the first chunk's results."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.writes = 0

    def write(self, text: str) -> None:
        self.writes += 1
        if self.writes > 2:  # the header, then the first chunk
            raise OSError(28, "No space left on device")
        super().write(text)


def test_a_result_write_failing_after_the_commit_says_what_was_recorded(
        registry: Registry, token: Token, tmp_path: Path) -> None:
    codes = [resident(registry, f"W{i}") for i in range(4)]
    request = io.BytesIO(("record_code\n" + "".join(f"{c}\n" for c in codes)).encode())
    _, digest = check(request)
    request.seek(0)
    with pytest.raises(BatchInterruptedError) as failed:
        provide_batch(registry, None, RELEASE, request, digest,  # type: ignore[arg-type]
                      FullDisk(tmp_path / "result.csv"), lambda _n: None, 2)
    message = str(failed.value)
    assert "No space left" in message and "rows 3- were recorded (entries 2-3) but not " \
        "released" in message
    assert log.size(registry.connection()) == 4  # recorded: the safe direction
    assert not (tmp_path / "result.csv").exists()


def test_the_result_is_private_and_renamed_when_complete(registry: Registry, token: Token,
                                                          tmp_path: Path) -> None:
    code = resident(registry, "S1")
    run(registry, tmp_path, f"record_code\n{code}\n")
    assert not (tmp_path / "result.csv.partial").exists()
    assert (tmp_path / "result.csv").stat().st_mode & 0o077 == 0
    assert tuple(
        (tmp_path / "result.csv").read_text().splitlines()[0].split(",")) == batch_provision.RESULT_COLUMNS


def test_the_largest_chunk_of_four_information_fits_one_query(registry: Registry, token: Token,
                                                              tmp_path: Path) -> None:
    """--chunk 5000 rows of 4 information: 20,000 parameters, under SQLite's 32,766."""
    resident(registry, "S1")
    lines = "".join(f"人{i},1985-04-12,1,{FOUR['address']}\n" for i in range(4999))
    summary, result, _ = run(registry, tmp_path, "name,birth_date,sex,address\n" + lines +
                             ",".join(FOUR.values()) + "\n", chunk=5000)
    assert (summary.rows, summary.matched, summary.no_match, summary.entries) == (5000, 1, 4999, 2)
    assert token.macs == 1 and result[-1]["status"] == "match"


def test_a_request_without_rows_records_nothing(registry: Registry, token: Token,
                                                tmp_path: Path) -> None:
    summary, result, _ = run(registry, tmp_path, "record_code,ref\n")
    assert result == [] and summary.rows == summary.entries == 0 and token.macs == 0
    assert summary.first_index is None and log.size(registry.connection()) == 0
