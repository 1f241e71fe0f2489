"""RFC 6962 Merkle hashing and proofs: the published vectors, then every size and pair."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT
from tools.audit import merkle

VECTORS = json.loads((ROOT / "fixtures" / "rfc6962-vectors.json").read_text())
LEAVES = [merkle.leaf_hash(bytes.fromhex(x)) for x in VECTORS["leaves"]]


def test_roots_of_every_size_match_rfc6962() -> None:
    for size, root in enumerate(VECTORS["roots"]):
        assert merkle.root_of(LEAVES[:size]).hex() == root


def test_inclusion_vectors() -> None:
    for case in VECTORS["inclusion"]:
        index, size = case["leaf"], case["size"]
        proof = merkle.inclusion_proof(index, size, merkle.list_subtree(LEAVES[:size]))
        assert [p.hex() for p in proof] == case["proof"]
        root = bytes.fromhex(VECTORS["roots"][size])
        assert merkle.verify_inclusion(index, size, LEAVES[index], proof, root)
        assert not merkle.verify_inclusion(index, size, LEAVES[index], proof, LEAVES[0])


def test_consistency_vectors() -> None:
    for case in VECTORS["consistency"]:
        old, new = case["old"], case["new"]
        proof = merkle.consistency_proof(old, new, merkle.list_subtree(LEAVES[:new]))
        assert [p.hex() for p in proof] == case["proof"]
        roots = VECTORS["roots"]
        assert merkle.verify_consistency(old, new, bytes.fromhex(roots[old]),
                                         bytes.fromhex(roots[new]), proof)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=8), min_size=1, max_size=40))
def test_every_inclusion_and_consistency_proof_verifies(entries: list[bytes]) -> None:
    leaves = [merkle.leaf_hash(e) for e in entries]
    subtree = merkle.list_subtree(leaves)
    n = len(leaves)
    roots = {m: merkle.root_of(leaves[:m]) for m in range(1, n + 1)}
    for i in range(n):
        proof = merkle.inclusion_proof(i, n, subtree)
        assert merkle.verify_inclusion(i, n, leaves[i], proof, roots[n])
        assert not merkle.verify_inclusion(i, n, merkle.leaf_hash(b"x" + entries[i]), proof,
                                           roots[n])
        if proof:
            assert not merkle.verify_inclusion(i, n, leaves[i], proof[:-1], roots[n])
    for m in range(1, n + 1):
        proof = merkle.consistency_proof(m, n, subtree)
        assert merkle.verify_consistency(m, n, roots[m], roots[n], proof)
        if m < n:
            assert not merkle.verify_consistency(m, n, merkle.leaf_hash(b"forged"), roots[n],
                                                 proof)


def test_compact_range_gives_every_prefix_root() -> None:
    stack: list[tuple[int, bytes]] = []
    for size in range(1, 9):
        merkle.push(stack, LEAVES[size - 1])
        assert merkle.fold(stack).hex() == VECTORS["roots"][size]
