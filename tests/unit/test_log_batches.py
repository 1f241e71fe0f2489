"""Group-committed appends (``log.append_batch``, ``provision.record_many``) on SQLite and
PostgreSQL, with the token's MAC and head as stand-ins (tests/integration/
test_log_batches_token.py runs them in SoftHSM): the stored tree equals the tree of the
same entries appended one by one, the batch MAC covers exactly its range, entries store
an empty per-entry MAC, the head is written once per batch, and a failure commits
nothing."""

from __future__ import annotations

import hashlib
import json

import pytest

from tools.audit import batches, log, merkle, provision
from tools.audit.provision import Provided, Release
from tools.errors import ProvisionNotRecordedError
from tools.registry import Registry

from .fake_log_keys import FakeAttester

RELEASE = Release("station-b", "Asia/Tokyo", "alice", "NENKIN", "PENSION-CHECK")


def fake_mac(message: bytes) -> bytes:
    return hashlib.sha256(b"key" + message).digest()[:16]


def items(count: int, first: int = 0) -> list[tuple[dict, str, int | None]]:
    return [({"n": first + i, "resident_id": first + i}, "provision", first + i)
            for i in range(count)]


def leaves(registry: Registry) -> list[bytes]:
    return [merkle.leaf_hash(str(raw).encode()) for (raw,) in registry.connection().execute(
        "SELECT entry FROM provision_log ORDER BY idx")]


def all_nodes(registry: Registry) -> dict[tuple[int, int], bytes]:
    return {(int(a), int(b)): bytes(h) for a, b, h in registry.connection().execute(
        "SELECT level, position, hash FROM merkle_nodes")}


@pytest.mark.parametrize("sizes", [[1], [5], [1, 1, 1], [3, 4, 9], [8, 8], [7, 1, 16, 2]])
def test_batches_store_the_same_tree_as_single_appends(tmp_path, registry: Registry,
                                                       sizes: list[int]) -> None:
    single = Registry(tmp_path / "single.sqlite")
    done, first = [], 0
    for count in sizes:
        with registry.transaction() as db:
            done.append(log.append_batch(db, items(count, first), fake_mac, 3))
        with single.transaction() as db:
            for fields, kind, resident in items(count, first):
                log.append(db, fields, kind, resident, fake_mac, 3)
        first += count
    assert [d.start for d in done] == [sum(sizes[:i]) for i in range(len(sizes))]
    assert all_nodes(registry) == all_nodes(single)  # every complete subtree, no extra
    db = registry.connection()
    assert done[-1].root == log.root(db, first) == merkle.root_of(leaves(single))
    rows = list(db.execute("SELECT mac, mac_version FROM provision_log"))
    assert {(bytes(m), int(v)) for m, v in rows} == {(b"", 3)}


def test_the_batch_row_covers_its_range_and_subtree_root(registry: Registry) -> None:
    with registry.transaction() as db:
        log.append_batch(db, items(3), fake_mac, 1)
    with registry.transaction() as db:
        log.append_batch(db, items(6, 3), fake_mac, 2)
    db = registry.connection()
    got = [(int(s), int(e), bytes(m), int(v)) for s, e, m, v in db.execute(
        "SELECT start_idx, end_idx, mac, mac_version FROM log_batches ORDER BY start_idx")]
    all_leaves = leaves(registry)
    assert got == [
        (0, 3, fake_mac(batches.batch_message(0, 3, merkle.root_of(all_leaves[0:3]))), 1),
        (3, 9, fake_mac(batches.batch_message(3, 9, merkle.root_of(all_leaves[3:9]))), 2)]
    # an entry moved within its batch no longer matches the MAC'd root
    swapped = [all_leaves[4], all_leaves[3], *all_leaves[5:9]]
    assert fake_mac(batches.batch_message(3, 9, merkle.root_of(swapped))) != got[1][2]
    # each entry names its own index
    assert [json.loads(r[0])["index"] for r in db.execute(
        "SELECT entry FROM provision_log ORDER BY idx")] == list(range(9))


def test_append_batch_after_single_appends_uses_the_stored_frontier(registry: Registry) -> None:
    with registry.transaction() as db:
        for fields, kind, resident in items(11):
            log.append(db, fields, kind, resident, fake_mac, 1)
        done = log.append_batch(db, items(6, 11), fake_mac, 1)
    assert (done.start, done.end) == (11, 17)
    assert done.root == merkle.root_of(leaves(registry))
    proof = merkle.inclusion_proof(13, 17, log.stored_subtree(registry.connection()))
    assert merkle.verify_inclusion(13, 17, leaves(registry)[13], proof, done.root)


def test_an_empty_batch_is_refused(registry: Registry) -> None:
    with pytest.raises(ValueError, match="empty"), registry.transaction() as db:
        log.append_batch(db, [], fake_mac, 1)


class Token:
    def __init__(self) -> None:
        self.heads: list[tuple[int, bytes]] = []
        self.macs = 0
        self.fail_mac = False


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> Token:
    fake = Token()

    def mac(_hsm, _version, message, _role):  # type: ignore[no-untyped-def]
        if fake.fail_mac:
            raise RuntimeError("token removed")
        fake.macs += 1
        return fake_mac(message)

    monkeypatch.setattr(provision, "mac", mac)
    monkeypatch.setattr(provision, "Attester", FakeAttester)
    monkeypatch.setattr(provision, "current_version", lambda _hsm, _role: 4)
    monkeypatch.setattr(provision.anchors, "write_head",
                        lambda _hsm, _db, size, root: fake.heads.append((size, root)))
    return fake


def provided(count: int) -> list[Provided]:
    return [Provided(("name", "record_code"), 100 + i, f"code{i}", f"row {i + 1}")
            for i in range(count)]


def test_record_many_one_mac_one_head_per_group(registry: Registry, token: Token) -> None:
    first = provision.record_many(registry, None, RELEASE, provided(250))  # type: ignore[arg-type]
    second = provision.record_many(registry, None, RELEASE, provided(3))  # type: ignore[arg-type]
    assert first == list(range(250)) and second == [250, 251, 252]
    assert token.macs == 2
    db = registry.connection()
    assert token.heads == [(250, log.root(db, 250)), (253, log.root(db, 253))]
    entry = log.entry_at(db, 7).fields  # type: ignore[union-attr]
    assert entry == {"index": 7, "kind": "provision", "time_utc": entry["time_utc"],
                     "time_local": entry["time_local"], "station": "station-b",
                     "operator": "alice", "recipient": "NENKIN", "purpose": "PENSION-CHECK",
                     "fields": ["name", "record_code"], "resident_id": 107,
                     "record_code": "code7", "card_serial": None, "detail": "row 8"}
    assert [int(r[0]) for r in db.execute("SELECT resident_id FROM provision_log "
                                          "WHERE idx = 7")] == [107]


def test_record_many_token_fault_commits_nothing(registry: Registry, token: Token) -> None:
    provision.record_many(registry, None, RELEASE, provided(2))  # type: ignore[arg-type]
    token.fail_mac = True
    with pytest.raises(ProvisionNotRecordedError, match="nothing of them was released"):
        provision.record_many(registry, None, RELEASE, provided(5))  # type: ignore[arg-type]
    db = registry.connection()
    assert log.size(db) == 2
    assert db.execute("SELECT count(*) FROM merkle_nodes").fetchone()[0] == 3
    assert db.execute("SELECT count(*) FROM log_batches").fetchone()[0] == 1
    assert token.heads == [(2, log.root(db, 2))]


def test_record_many_database_fault_commits_nothing(registry: Registry, token: Token,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_head(_hsm, db, size, root):  # type: ignore[no-untyped-def]
        raise OSError("disk full")

    monkeypatch.setattr(provision.anchors, "write_head", broken_head)
    with pytest.raises(ProvisionNotRecordedError):
        provision.record_many(registry, None, RELEASE, provided(4))  # type: ignore[arg-type]
    assert log.size(registry.connection()) == 0


def test_sqlite_commits_are_fsynced(tmp_path) -> None:
    """Recorded before released needs a durable COMMIT: WAL with synchronous=FULL (2);
    NORMAL would let a power loss undo a commit whose results were already released."""
    registry = Registry(tmp_path / "r.sqlite")
    db = registry.connection()
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2
