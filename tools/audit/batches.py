"""Group-committed appends: one token MAC per batch of entries instead of one per entry.

A batch ``[start, end)`` is authenticated by the audit-entry MAC key over
``batch_message(start, end, MTH(start..end))``: the Merkle tree hash of exactly those
leaves, bound to their positions. Changing, moving, adding or removing any entry of the
batch changes that hash (RFC 6962 trees are collision resistant), so the batch MAC is as
strong as a MAC per entry; see docs/decisions.md. The entries of a batch store an empty
per-entry ``mac``; a row of ``log_batches`` covers them.
"""

from __future__ import annotations

BATCH_DOMAIN = b"juki-log-batch\x00"


def batch_message(start: int, end: int, subtree_root: bytes) -> bytes:
    """What the batch MAC covers: the domain, both bounds (8 bytes, big-endian each),
    and the batch's 32-byte Merkle subtree root."""
    if not 0 <= start < end or len(subtree_root) != 32:
        raise ValueError(f"a batch needs 0 <= start < end and a 32-byte root (got {start}, "
                         f"{end}, {len(subtree_root)} bytes)")
    return BATCH_DOMAIN + start.to_bytes(8, "big") + end.to_bytes(8, "big") + subtree_root
