"""Group commits with the token's own keys (SoftHSM): the batch MAC verifies in the token
over exactly its range, the token head follows each batch, batches and single entries
mix, and a token fault in the middle of `provide batch` (the MAC key of the second chunk
cannot be found in the token) releases nothing of that chunk and commits nothing of it."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import pytest

from hsm.errors import KeyNotFoundError
from hsm.keys import current_version
from hsm.mac import check_mac
from hsm.roles import KeyRole
from tools.audit import anchors, log, merkle, provision
from tools.audit.batch_provision import BatchInterruptedError, FileResult, provide_batch
from tools.audit.batch_request import check
from tools.audit.batches import batch_message
from tools.audit.provision import Provided, Release, record, record_many
from tools.registry import Registry, new_record_code

RELEASE = Release("station-t", "Asia/Tokyo", "op-1", "NENKIN", "B1-57")


def leaves(registry: Registry) -> list[bytes]:
    return [merkle.leaf_hash(str(raw).encode()) for (raw,) in registry.connection().execute(
        "SELECT entry FROM provision_log ORDER BY idx")]


def test_batches_verify_in_the_token(registry: Registry, station) -> None:  # type: ignore[no-untyped-def]
    hsm = station.hsm
    record(registry, hsm, RELEASE, kind="provision", fields=["name"], resident_id=1,
           record_code=None, card_serial=None)
    indexes = record_many(registry, hsm, RELEASE, [
        Provided(("name", "address"), i, None, f"row {i}") for i in range(1, 38)])
    assert indexes == list(range(1, 38))
    db = registry.connection()
    [(start, end, tag, version)] = list(db.execute(
        "SELECT start_idx, end_idx, mac, mac_version FROM log_batches"))
    assert (start, end, version) == (1, 38, current_version(hsm, KeyRole.AUDIT_ENTRY_MAC))
    all_leaves = leaves(registry)
    message = batch_message(1, 38, merkle.root_of(all_leaves[1:38]))
    assert check_mac(hsm, version, message, bytes(tag), KeyRole.AUDIT_ENTRY_MAC)
    for forged in (batch_message(0, 38, merkle.root_of(all_leaves[0:38])),
                   batch_message(1, 37, merkle.root_of(all_leaves[1:37])),
                   batch_message(1, 38, merkle.root_of([*all_leaves[2:38], all_leaves[1]]))):
        assert not check_mac(hsm, version, forged, bytes(tag), KeyRole.AUDIT_ENTRY_MAC)
    head = anchors.read_head(hsm, db)
    assert head is not None and (head.size, head.root) == (38, merkle.root_of(all_leaves))


def test_token_fault_mid_batch(registry: Registry, station, tmp_path: Path,  # type: ignore[no-untyped-def]
                               monkeypatch: pytest.MonkeyPatch) -> None:
    hsm = station.hsm
    codes = []
    for i in range(6):
        codes.append(new_record_code())
        registry.begin_issuance(f"TF{i}", "resident", codes[-1], "131016", dt.date(2035, 1, 1))
        registry.complete_issuance(f"TF{i}", b"cert", identity={
            "name": f"N{i}", "birth_date": "1970-01-01", "sex": "2", "address": "A"})
    real = provision.current_version
    calls = []

    def version(token, role):  # type: ignore[no-untyped-def]
        calls.append(role)  # the second chunk asks the token for a key it does not hold
        return real(token, role) + (1000 if len(calls) == 2 else 0)

    monkeypatch.setattr(provision, "current_version", version)
    request = io.BytesIO(("record_code\n" + "".join(f"{c}\n" for c in codes)).encode())
    _, digest = check(request)
    request.seek(0)
    out = tmp_path / "result.csv"
    with pytest.raises(BatchInterruptedError, match="rows 1-3 were provided") as failed:
        provide_batch(registry, hsm, RELEASE, request, digest, FileResult(out),
                      lambda _n: None, chunk_size=3)
    cause = failed.value.__cause__  # record_many's refusal, caused by the token's
    assert cause is not None and isinstance(cause.__cause__, KeyNotFoundError)
    assert not out.exists()
    partial = list(csv.DictReader((tmp_path / "result.csv.partial").open(encoding="utf-8")))
    assert [r["record_code"] for r in partial] == codes[:3]
    db = registry.connection()
    assert log.size(db) == 3 and int(db.execute("SELECT count(*) FROM log_batches")
                                     .fetchone()[0]) == 1
    head = anchors.read_head(hsm, db)
    assert head is not None and head.size == 3  # the head never saw the failed chunk
