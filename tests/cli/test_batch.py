"""`juki issue batch` on two readers, with an operator swapping issued cards for blank
ones; bad lines are reported and skipped."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from cardlib import pcsc
from cardlib.apps.issuer import IssuerSession
from cardlib.channel import ApduChannel
from cardlib.constants import LifeCycle
from cardlib.errors import CardError
from tools.registry import new_record_code
from tools.rig.rig import Rig, reader_name
from tools.station.home import StationHome

from ..conftest import ROOT
from .test_commands import FIXTURE, pin_file


def locked(reader: str) -> bool:
    """True only for a card we can read and that is issued (a busy card is left alone)."""
    try:
        with pcsc.PcscTransport(reader) as transport:
            issuer = IssuerSession(ApduChannel(transport))
            issuer.select()
            return issuer.read_info().life_cycle == LifeCycle.SECURED
    except CardError:
        return False  # busy (another host holds it exclusively) or gone


def operator(rig: Rig, workdir: Path, stop: threading.Event) -> None:
    """Takes out every issued card and inserts a new blank one in its place."""
    made = 0
    while not stop.is_set():
        present = {s.name for s in pcsc.reader_states() if s.card_present}
        for slot in (0, 1):
            if reader_name(slot) in present and locked(reader_name(slot)):
                made += 1
                rig.insert_card(slot, workdir / f"blank-{made}.json")
        time.sleep(0.2)


def test_batch_on_two_readers(rig_home: Path, tmp_path: Path) -> None:
    rig = Rig(StationHome(rig_home))
    for slot in (0, 1):
        rig.insert_card(slot, tmp_path / f"first-{slot}.json")
    base = json.loads(FIXTURE.read_text(encoding="utf-8"))
    good = [json.dumps(base | {"resident_code": new_record_code()}, ensure_ascii=False)
            for _ in range(4)]
    bad = [json.dumps(base | {"municipality_code": "271005"}, ensure_ascii=False), "{not json"]
    batch = tmp_path / "batch.jsonl"
    batch.write_text("\n".join([good[0], bad[0], good[1], bad[1], good[2], good[3]]) + "\n",
                     encoding="utf-8")
    stop = threading.Event()
    helper = threading.Thread(target=operator, args=(rig, tmp_path, stop), daemon=True)
    helper.start()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "tools", "--home", str(rig_home), "issue", "batch", str(batch),
             "--pin-file", str(pin_file(tmp_path)), "--timeout", "30", "--json"],
            capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    finally:
        stop.set()
        helper.join(timeout=30)
    assert result.returncode == 2, result.stdout + result.stderr  # rejected lines, no failures
    report = json.loads(result.stdout)
    assert report["summary"] == {"issued": 4, "rejected": 2, "failed": 0, "not-issued": 0}, (
        result.stderr)
    by_line = {line["line"]: line for line in report["lines"]}
    assert "municipality_code" in by_line[2]["detail"]
    assert "malformed JSON" in by_line[4]["detail"]
    issued = [line for line in report["lines"] if line["status"] == "issued"]
    assert len({line["card_serial"] for line in issued}) == 4
    codes = [line["card_face"]["security_code"] for line in issued]  # each said once, here
    assert all(len(code) == 4 and code.isdigit() for code in codes)
    assert all("card_face" not in line for line in report["lines"] if line["status"] != "issued")
    assert {line["reader"] for line in issued} == {reader_name(0), reader_name(1)}
    rig.insert_card(0, tmp_path / "after-0.json")
    rig.insert_card(1, tmp_path / "after-1.json")
