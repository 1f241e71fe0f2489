"""`juki demo` brings up and down a rig of its own, so it runs before the shared rig."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ..conftest import juki


@pytest.mark.own_rig
def test_demo_issues_verifies_reads_and_rejects_a_counterfeit(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    result = juki(tmp_path / "unused", "demo", "--workdir", str(home))
    out = result.stdout
    assert re.search(r"issued card \d{15}", out)
    assert out.count("GENUINE: card") == 3 and out.count("NOT GENUINE: card") == 1
    assert "[FAIL] challenge_response" in out
    assert "name: 山田　太郎" in out
    assert "demo finished" in out
    assert not (home / "rig" / "state.json").exists()  # rig brought down
    assert "4821" not in out + result.stderr  # the demo PIN is never printed
