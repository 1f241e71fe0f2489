"""SIGKILL the issuing process at random points: the next start reports the unfinished
issuance, nothing is lost, and issuing the same request again succeeds."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from tools.registry import Registry
from tools.rig.rig import reader_name

from ..conftest import ROOT, direct_registry_target, juki
from .test_commands import PIN, insert_blank, pin_file, request_file

RUNS = 20


def statuses(home: Path, serial: str) -> list[str]:
    registry = Registry(direct_registry_target(home))
    try:
        return [c.status for c in registry.list() if c.serial == serial]
    finally:
        registry.close()


def test_sigkill_during_issuance(rig_home: Path, tmp_path: Path) -> None:
    rng = random.Random(2026)
    timing = tmp_path / "timing"
    timing.mkdir()
    insert_blank(rig_home, timing)
    start = time.monotonic()
    juki(rig_home, "issue", "resident", str(request_file(timing)), "--pin-file",
         str(pin_file(timing)), "--reader", reader_name(0))
    full = time.monotonic() - start
    killed_mid_way = 0
    for run in range(RUNS):
        work = tmp_path / f"run{run}"
        work.mkdir()
        serial = insert_blank(rig_home, work)
        command = [sys.executable, "-m", "tools", "--home", str(rig_home), "issue", "resident",
                   str(request_file(work)), "--pin-file", str(pin_file(work)),
                   "--reader", reader_name(0)]
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        if run % 2 == 0:  # anywhere, start-up included
            delay = rng.uniform(0.05, full)
            time.sleep(delay)
        else:  # inside the issuance: once its registry row exists
            deadline = time.monotonic() + full * 2
            while "issuing" not in statuses(rig_home, serial) and time.monotonic() < deadline:
                time.sleep(0.01)
            delay = rng.uniform(0, 0.3 * full)
            time.sleep(delay)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        before = statuses(rig_home, serial)
        assert "active" not in before or before.count("active") == 1, (run, delay, before)
        if "issuing" in before:
            killed_mid_way += 1
            report = juki(rig_home, "issue", "unfinished", "--json", check=1)
            unfinished = json.loads(report.stdout)
            assert [r["serial"] for r in unfinished if r["interrupted"]] == [serial]
            assert "was interrupted" in report.stderr
        if "active" not in before:  # the same request again finishes the card
            juki(rig_home, "issue", "resident", str(request_file(work)), "--pin-file",
                 str(pin_file(work)), "--reader", reader_name(0))
        after = statuses(rig_home, serial)
        assert after.count("active") == 1 and "issuing" not in after, (run, delay, after)
        verdict = json.loads(juki(rig_home, "verify", "--reader", reader_name(0), "--json",
                                  input=f"{PIN}\n").stdout)
        assert verdict["genuine"] and verdict["card_serial"] == serial
    assert killed_mid_way >= RUNS // 4  # the odd runs kill inside an issuance
