"""The proofs of a disclosure from nodes read a level at a time are the proofs the stored
tree gives node by node; a node deleted from the database is still named."""

from __future__ import annotations

import pytest

from tools.audit import log, merkle
from tools.audit.proof_nodes import needed, prefetched_subtree
from tools.registry import Registry


def fake_mac(message: bytes) -> bytes:
    return b"\x00" * 16


@pytest.mark.parametrize("size", [1, 2, 7, 64, 100, 1000])
def test_prefetched_proofs_equal_the_stored_ones(tmp_path, size: int) -> None:
    registry = Registry(tmp_path / "r.sqlite")
    with registry.transaction() as db:
        log.append_batch(db, [({"n": i}, "provision", i % 3) for i in range(size)],
                         fake_mac, 1)
    db = registry.connection()
    indexes = [i for i in range(size) if i % 3 == 1] or [0]
    fetched, stored = prefetched_subtree(db, indexes, size), log.stored_subtree(db)
    for index in indexes:
        assert (merkle.inclusion_proof(index, size, fetched)
                == merkle.inclusion_proof(index, size, stored))
    assert fetched(0, size) == log.root(db, size)  # a range no proof needed: node by node
    assert len(needed(indexes, size)) <= len(indexes) * max(1, size.bit_length())


def test_a_deleted_node_is_named(tmp_path) -> None:
    registry = Registry(tmp_path / "r.sqlite")
    with registry.transaction() as db:
        log.append_batch(db, [({"n": i}, "provision", 0) for i in range(16)], fake_mac, 1)
        db.execute("DELETE FROM merkle_nodes WHERE level = 3 AND position = 1")
    subtree = prefetched_subtree(registry.connection(), [0], 16)
    with pytest.raises(log.MissingNodeError, match=r"level 3, position 1"):
        merkle.inclusion_proof(0, 16, subtree)
