"""A stand-in for the station's log key in tests that fake the token (MACs, head): each
append's attestation row is written as the station code writes it, its signature a
hash (nothing checks it here; tests/integration/test_shared_log_trust.py checks real
ones)."""

from __future__ import annotations

import hashlib
from typing import Any

from tools.audit import attestations


class FakeAttester:
    def __init__(self, _hsm: Any, station_id: str) -> None:
        self.station_id = station_id

    def attest(self, db: Any, start: int, end: int, subtree_root: bytes) -> None:
        text = attestations.message(self.station_id, start, end, subtree_root)
        db.execute("INSERT INTO log_attestations (start_idx, end_idx, station_id, key_id, "
                   "signature) VALUES (?, ?, ?, ?, ?)",
                   (start, end, self.station_id, "fake", hashlib.sha512(text).digest()))
