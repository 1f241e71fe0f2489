"""Issuance figures: seconds per card split into card I/O, on-card key generation, HSM
and registry time; cards per minute for a batch of 20 on 2 virtual readers.

    .venv/bin/python bench/issuance.py [--cards 5] [--batch 20]

Brings up a rig of its own (stop any other rig first)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import bench_station  # noqa: E402
from cardlib.apps.issuer import IssuerSession  # noqa: E402
from cardlib.channel import ApduChannel  # noqa: E402
from cardlib.constants import Ins, LifeCycle  # noqa: E402
from cardlib.errors import CardError  # noqa: E402
from cardlib.pcsc import PcscTransport  # noqa: E402
from hsm.token import Hsm  # noqa: E402
from tools.issuance.batch import BatchLine, run_batch  # noqa: E402
from tools.issuance.request import load_request  # noqa: E402
from tools.issuance.resident_card import issue_resident_card  # noqa: E402
from tools.registry import Registry, new_record_code  # noqa: E402
from tools.rig.rig import Rig, reader_name  # noqa: E402
from tools.station.pins import Pin, ResidentCardPins  # noqa: E402

PINS = ResidentCardPins(Pin("1234"), Pin("5678"), Pin("BENCH1234"))
BASE = load_request(ROOT / "fixtures" / "requests" / "resident-yamada.json")


class Clock:
    def __init__(self) -> None:
        self.totals = {"card I/O": 0.0, "on-card keygen": 0.0, "HSM": 0.0, "registry": 0.0}

    def add(self, what: str, seconds: float) -> None:
        self.totals[what] += seconds


class TimedTransport:
    def __init__(self, inner: PcscTransport, clock: Clock) -> None:
        self.inner, self.clock = inner, clock

    def send_and_receive(self, apdu: bytes):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        try:
            return self.inner.send_and_receive(apdu)
        finally:
            keygen = apdu[1] == Ins.GENERATE_KEY_PAIR
            self.clock.add("on-card keygen" if keygen else "card I/O", time.perf_counter() - start)

    def close(self) -> None:
        self.inner.close()


@contextlib.contextmanager
def timed_sections(clock: Clock):  # type: ignore[no-untyped-def]
    """Time every PKCS#11 section and every registry transaction."""
    original_locked, original_tx = Hsm.locked, Registry.transaction

    depth = threading.local()

    @contextlib.contextmanager
    def locked(self):  # type: ignore[no-untyped-def]
        outer = getattr(depth, "n", 0) == 0  # sections nest (re-entrant lock): count once
        depth.n = getattr(depth, "n", 0) + 1
        start = time.perf_counter()
        try:
            with original_locked(self) as session:
                yield session
        finally:
            depth.n -= 1
            if outer:
                clock.add("HSM", time.perf_counter() - start)

    @contextlib.contextmanager
    def transaction(self):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        try:
            with original_tx(self) as db:
                yield db
        finally:
            clock.add("registry", time.perf_counter() - start)

    Hsm.locked, Registry.transaction = locked, transaction  # type: ignore[method-assign]
    try:
        yield
    finally:
        Hsm.locked, Registry.transaction = original_locked, original_tx  # type: ignore[method-assign]


def operator(rig: Rig, workdir: Path, stop: threading.Event) -> None:
    made = 0
    while not stop.is_set():
        for slot in (0, 1):
            try:
                with PcscTransport(reader_name(slot)) as transport:
                    issuer = IssuerSession(ApduChannel(transport))
                    issuer.select()
                    done = issuer.read_info().life_cycle == LifeCycle.SECURED
            except CardError:
                done = False
            if done:
                made += 1
                rig.insert_card(slot, workdir / f"batch-{made}.json")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cards", type=int, default=5)
    parser.add_argument("--batch", type=int, default=20)
    args = parser.parse_args()
    with bench_station(2, "juki-bench-issue-") as (station, rig, home):
        walls, splits = [], []
        for index in range(args.cards):
            rig.insert_card(0, home / f"single-{index}.json")
            clock = Clock()
            request = dataclasses.replace(BASE, resident_code=new_record_code())
            start = time.perf_counter()
            with timed_sections(clock), PcscTransport(reader_name(0), exclusive=True) as inner:
                issue_resident_card(ApduChannel(TimedTransport(inner, clock)), station.hsm,
                                    station.registry, request, PINS)
            walls.append(time.perf_counter() - start)
            splits.append(clock.totals)
        print(f"full issuance, {args.cards} cards on one reader (medians, seconds per card):")
        wall = statistics.median(walls)
        print(f"  {'total':16} {wall:6.3f}")
        for what in splits[0]:
            value = statistics.median(s[what] for s in splits)
            print(f"  {what:16} {value:6.3f}  ({value / wall:4.0%})")
        rest = wall - sum(statistics.median(s[w] for s in splits) for w in splits[0])
        print(f"  {'host (python)':16} {rest:6.3f}  ({rest / wall:4.0%})  SM wrapping, X.509, TLV")

        lines = [BatchLine(i + 1, "not-issued",
                           request=dataclasses.replace(BASE, resident_code=new_record_code()))
                 for i in range(args.batch)]
        for slot in (0, 1):
            rig.insert_card(slot, home / f"batch-first-{slot}.json")
        stop = threading.Event()
        helper = threading.Thread(target=operator, args=(rig, home, stop), daemon=True)
        helper.start()
        start = time.perf_counter()
        run_batch(lines, [reader_name(0), reader_name(1)], station.hsm,
                  station.registry.location, PINS, timeout=60)
        elapsed = time.perf_counter() - start
        stop.set()
        helper.join()
        issued = sum(1 for line in lines if line.status == "issued")
        print(f"batch of {args.batch} on 2 readers: {issued} issued in {elapsed:.1f} s = "
              f"{issued / elapsed * 60:.1f} cards/minute (card swaps by a simulated operator)")
        failed = [line.as_json() for line in lines if line.status != "issued"]
        if failed:
            print(json.dumps({"batch_not_issued": failed}, ensure_ascii=False))


if __name__ == "__main__":
    main()
