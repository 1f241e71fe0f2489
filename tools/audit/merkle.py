"""RFC 6962 / RFC 9162 Merkle tree hashing, inclusion and consistency proofs.

leaf = SHA-256(00 ‖ entry), node = SHA-256(01 ‖ left ‖ right); the tree over n leaves
splits at k, the largest power of two below n. ``subtree(a, b)`` supplies MTH(D[a:b])
for any range the algorithms need; callers back it with stored nodes (the registry)
or with a list of leaf hashes (tests, verification).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence

Subtree = Callable[[int, int], bytes]  # (start, end) -> MTH of leaves [start, end)
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly below ``n`` (n ≥ 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaves: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes, in one pass with a stack of perfect subtrees."""
    if not leaves:
        return EMPTY_ROOT
    return fold(compact_range(leaves))


def compact_range(leaves: Sequence[bytes]) -> list[tuple[int, bytes]]:
    """The perfect subtrees (height, hash) covering ``leaves``, left to right."""
    stack: list[tuple[int, bytes]] = []
    for leaf in leaves:
        push(stack, leaf)
    return stack


def push(stack: list[tuple[int, bytes]], leaf: bytes) -> None:
    """Append one leaf hash to a compact range (merging equal heights)."""
    height, value = 0, leaf
    while stack and stack[-1][0] == height:
        _, left = stack.pop()
        value = node_hash(left, value)
        height += 1
    stack.append((height, value))


def fold(stack: list[tuple[int, bytes]]) -> bytes:
    """The root of the tree whose compact range is ``stack`` (RFC 6962 shape)."""
    if not stack:
        return EMPTY_ROOT
    value = stack[-1][1]
    for _, left in reversed(stack[:-1]):
        value = node_hash(left, value)
    return value


def list_subtree(leaves: Sequence[bytes]) -> Subtree:
    def subtree(start: int, end: int) -> bytes:
        return root_of(leaves[start:end])

    return subtree


def inclusion_proof(index: int, size: int, subtree: Subtree) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of ``size`` leaves (RFC 6962 2.1.1)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    proof: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = split_point(end - start)
        if index < start + k:
            proof.append(subtree(start + k, end))
            end = start + k
        else:
            proof.append(subtree(start, start + k))
            start += k
    return list(reversed(proof))


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root a leaf and its audit path imply (RFC 9162 2.1.3.2); raises if the path
    has the wrong length for that position."""
    if not 0 <= index < size:
        raise ValueError("index outside the tree")
    fn, sn, value = index, size - 1, leaf
    for sibling in proof:
        if sn == 0:
            raise ValueError("inclusion proof too long")
        if fn & 1 or fn == sn:
            value = node_hash(sibling, value)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            value = node_hash(value, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("inclusion proof too short")
    return value


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes],
                     root: bytes) -> bool:
    try:
        return hmac.compare_digest(root_from_inclusion(index, size, leaf, proof), root)
    except ValueError:
        return False


def consistency_proof(old: int, new: int, subtree: Subtree) -> list[bytes]:
    """Proof that the tree of ``old`` leaves is a prefix of the tree of ``new`` (RFC 6962
    2.1.2, SUBPROOF)."""
    if not 0 < old <= new:
        raise ValueError(f"no consistency proof from {old} to {new}")

    def subproof(m: int, start: int, end: int, complete: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if complete else [subtree(start, end)]
        k = split_point(n)
        if m <= k:
            return [*subproof(m, start, start + k, complete), subtree(start + k, end)]
        return [*subproof(m - k, start + k, end, False), subtree(start, start + k)]

    return subproof(old, 0, new, True)


def verify_consistency(old: int, new: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    """RFC 9162 2.1.4.2."""
    if old == new:
        return not proof and hmac.compare_digest(old_root, new_root)
    if not 0 < old < new or not proof:
        return False
    path = list(proof)
    if old & (old - 1) == 0:  # old is a power of two: its root starts the path
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return (sn == 0 and hmac.compare_digest(fr, old_root)
            and hmac.compare_digest(sr, new_root))
