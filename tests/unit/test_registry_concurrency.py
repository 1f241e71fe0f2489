"""Two stations writing one registry at once (two processes): no serial registered twice,
no record code handed out twice, nothing lost. On SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import multiprocessing
from pathlib import Path

import pytest

from tools.registry import Registry, RegistryError, new_record_code

ROUNDS = 25


def station(target: str, name: str, shared_serials: list[str], results) -> None:  # type: ignore[no-untyped-def]
    registry = Registry(target)
    issued, codes, lost_races = [], [], 0
    for index in range(ROUNDS):
        code = new_record_code()
        serial = f"{name}{index:014d}"
        registry.begin_issuance(serial, "resident", code, "131016", dt.date(2036, 1, 1))
        registry.complete_issuance(serial, b"cert")
        resident, new = registry.reserve_new_code(code)
        registry.commit_code_change(resident, code, new, "本人の請求")
        issued.append(serial)
        codes += [code, new]
        try:  # both stations race for the same physical card
            registry.begin_issuance(shared_serials[index], "resident", new_record_code(), "131016",
                                    dt.date(2036, 1, 1))
        except RegistryError:
            lost_races += 1
    registry.close()
    results.put((issued, codes, lost_races))


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request, tmp_path: Path) -> str:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        return str(tmp_path / "shared.sqlite")
    return request.getfixturevalue("fresh_postgres")


def test_two_stations_at_once(target: str) -> None:
    Registry(target).close()  # migrate once up front (concurrent migration is also locked)
    shared = [f"9{index:014d}" for index in range(ROUNDS)]
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [context.Process(target=station, args=(target, name, shared, results))
               for name in ("1", "2")]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    serials = [s for issued, _, _ in outcomes for s in issued]
    codes = [c for _, handed, _ in outcomes for c in handed]
    assert len(serials) == len(set(serials)) == 2 * ROUNDS
    assert len(codes) == len(set(codes)) == 4 * ROUNDS  # no code handed out twice
    assert sum(lost for _, _, lost in outcomes) == ROUNDS  # each shared card: one winner
    registry = Registry(target)
    try:
        cards = registry.list()
        assert sorted(c.serial for c in cards if c.status == "active") == sorted(serials)
        assert sorted(c.serial for c in cards if c.status == "issuing") == sorted(shared)
    finally:
        registry.close()
