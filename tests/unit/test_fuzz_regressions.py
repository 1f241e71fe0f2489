"""The fuzz targets (tests/fuzz) without atheris: every crash input `make fuzz` saved
under fixtures/fuzz/<target>/ replays without a failure (the bug it found stays fixed),
and every target accepts its seeds and a few hundred random inputs (targets do not rot
between fuzz runs)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.fuzz.registry import load_all

ROOT = Path(__file__).resolve().parents[2]
CRASHES = sorted((ROOT / "fixtures" / "fuzz").glob("*/*-*"))
TARGETS = load_all()

# Crash inputs whose bug is in a file another part is editing: reported to its owner,
# kept here as strict xfails until the fix lands (then the entry goes).
KNOWN_OPEN: dict[str, str] = {}


def _replay_params() -> list[object]:
    params = []
    for path in CRASHES:
        key = f"{path.parent.name}/{path.name}"
        marks = [pytest.mark.xfail(strict=True, reason=KNOWN_OPEN[key])] if key in KNOWN_OPEN else []
        params.append(pytest.param(path, id=key, marks=marks))
    return params


@pytest.mark.parametrize("path", _replay_params())
def test_saved_crash_input_no_longer_fails(path: Path) -> None:
    TARGETS[path.parent.name].run(path.read_bytes())


def test_every_crash_input_names_a_target() -> None:
    assert {path.parent.name for path in CRASHES} <= set(TARGETS)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_target_accepts_its_seeds_and_random_inputs(name: str) -> None:
    target = TARGETS[name]
    generator = random.Random(name)
    for seed in target.seeds():
        target.run(seed)
    for size in range(200):
        target.run(generator.randbytes(size % 150))
