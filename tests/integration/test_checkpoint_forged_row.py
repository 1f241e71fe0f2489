"""Attack (issue 14 security review): a checkpoint row inserted in SQL (no token) at the
log's current size, with a root of the attacker's choosing. `make_checkpoint` gave the
latest row back unchecked when the log had not grown since it, so a disclosure made
right then (its entry appended, the forged row already at that size) proved the
resident's entries against the forged root. Now the row is refused before it is used."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.audit import log
from tools.audit.checkpoints import latest, make_checkpoint
from tools.errors import LogTamperedError
from tools.registry import Registry

from .test_verify_anchored_token import fill


def test_a_forged_checkpoint_at_the_logs_size_is_not_given_back(registry: Registry, station,
                                                                tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    hsm, notes = station.hsm, tmp_path / "checkpoints"
    fill(registry, hsm, 3)
    signed = make_checkpoint(registry, hsm, notes)
    assert make_checkpoint(registry, hsm, notes) == signed  # unchanged log: the same one
    fill(registry, hsm, 2)
    with registry.transaction() as db:  # the attacker's row, at the size the log has now
        db.execute("INSERT INTO audit_checkpoints (size, root, at, key_label, signature) "
                   "VALUES (?, ?, ?, ?, ?)", (log.size(db), b"\x42" * 32, signed.at,
                                               signed.key_label, b"\x00" * 64))
    with pytest.raises(LogTamperedError, match="checkpoint of size 5 is not signed"):
        make_checkpoint(registry, hsm, notes)
    assert latest(registry.connection()).root == b"\x42" * 32  # it is there, and refused
