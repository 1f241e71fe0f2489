"""Move-in figures (特例転入 with the card): wall time per move-in split into card I/O,
on-card key generation, HSM and registry time, against a bare replay of the same APDUs
(pyscard ``transmit``) and the same token calls (the recorded python-pkcs11 operations
on one raw session, without the station's code around them).

    .venv/bin/python bench/counter.py [--moves 5]

Brings up a rig of its own (stop any other rig first). Each round moves the resident
out of one municipality and in at the other, so every move-in rewrites the card-info
AP, re-signs the integrity record, revokes the signature certificate and certifies a
new key generated on the card (``--no-signature-certificate`` leaves that out).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pkcs11  # noqa: E402
from pkcs11 import Mechanism  # noqa: E402
from smartcard.System import readers  # noqa: E402

from bench.common import bench_station  # noqa: E402
from bench.issuance import Clock, TimedTransport, timed_sections  # noqa: E402
from cardlib.channel import ApduChannel  # noqa: E402
from cardlib.pcsc import PcscTransport  # noqa: E402
from hsm.keys import latest_version, role_key  # noqa: E402
from hsm.roles import KeyRole  # noqa: E402
from hsm.token import Hsm  # noqa: E402
from tools.counter.moves import move_in, move_out  # noqa: E402
from tools.issuance.request import load_request  # noqa: E402
from tools.issuance.resident_card import issue_resident_card  # noqa: E402
from tools.registry import Registry, new_record_code  # noqa: E402
from tools.rig.rig import reader_name  # noqa: E402
from tools.station.pins import Pin, ResidentCardPins  # noqa: E402

PINS = ResidentCardPins(Pin("1234"), Pin("5678"), Pin("BENCH1234"))
BASE = load_request(ROOT / "fixtures" / "requests" / "resident-yamada.json")
TOWNS = (("131016", "東京都千代田区霞が関二丁目1番2号"), ("141003", "神奈川県横浜市中区本町一丁目1番地"))


class Recorder:
    """Keeps every C-APDU of the move-in, for the bare replay."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.sent = inner, []

    def send_and_receive(self, apdu: bytes):  # type: ignore[no-untyped-def]
        self.sent.append(bytes(apdu))
        return self.inner.send_and_receive(apdu)

    def close(self) -> None:
        self.inner.close()


@contextlib.contextmanager
def recorded_token_calls(calls: list[Callable[[Any], Any]]) -> Iterator[None]:
    """Keep every operation the station runs in the token (``Hsm.call``)."""
    original = Hsm.call

    def call(self, operation):  # type: ignore[no-untyped-def]
        calls.append(operation)
        return original(self, operation)

    Hsm.call = call  # type: ignore[method-assign]
    try:
        yield
    finally:
        Hsm.call = original  # type: ignore[method-assign]


@contextlib.contextmanager
def registry_net_of_hsm(clock: Clock) -> Iterator[None]:
    """A registry transaction holds token calls too (each event's MAC and the log head):
    count them as HSM time only, so the shares add up."""
    original = Registry.transaction

    @contextlib.contextmanager
    def transaction(self):  # type: ignore[no-untyped-def]
        hsm_before = clock.totals["HSM"]
        try:
            with original(self) as db:
                yield db
        finally:
            clock.totals["registry"] -= clock.totals["HSM"] - hsm_before

    Registry.transaction = transaction  # type: ignore[method-assign]
    try:
        yield
    finally:
        Registry.transaction = original  # type: ignore[method-assign]


def bare_apdus(reader: str, apdus: list[bytes]) -> float:
    """Seconds to send the same C-APDUs with bare pyscard ``transmit`` (the secure channel's
    commands are refused there, so on-card key generation is not in this floor)."""
    connection = next(r for r in readers() if str(r) == reader).createConnection()
    connection.connect()
    try:
        start = time.perf_counter()
        for apdu in apdus:
            connection.transmit(list(apdu))
        return time.perf_counter() - start
    finally:
        connection.disconnect()
        connection.release()


def bare_token(hsm: Hsm, calls: list[Callable[[Any], Any]]) -> float:
    """Seconds to run the same python-pkcs11 operations on one raw session. The SCP03
    session keys the move-in derived were session objects, destroyed when its card
    session ended: an operation on one of them is replayed as the same mechanism
    (AES-CMAC) on a token key of the same kind (the audit-entry MAC key)."""
    with hsm.locked() as session:
        stand_in = role_key(session, KeyRole.AUDIT_ENTRY_MAC,
                            latest_version(hsm, KeyRole.AUDIT_ENTRY_MAC) or 1)
        start = time.perf_counter()
        for operation in calls:
            try:
                operation(session)
            except pkcs11.PKCS11Error:
                stand_in.sign(bytes(32), mechanism=Mechanism.AES_CMAC)
        return time.perf_counter() - start


def one_move(station: Any, settings: dict[str, Any], code: str, round_: int,
             reissue: bool) -> tuple[float, dict[str, float], list[bytes], list[Any]]:
    """Move-out to the other town, then the timed move-in there with the card."""
    town, address = TOWNS[(round_ + 1) % 2]
    today = dt.date.today()
    move_out(station.registry, settings, code, town, today, "bench")
    clock, calls = Clock(), []
    with PcscTransport(reader_name(0), exclusive=True) as inner:
        recorder = Recorder(inner)
        start = time.perf_counter()
        with timed_sections(clock), registry_net_of_hsm(clock), recorded_token_calls(calls):
            move_in(ApduChannel(TimedTransport(recorder, clock)), station.hsm,
                    station.registry, settings, PINS.card_info, address, town, today,
                    reissue_signature=reissue, today=today)
        wall = time.perf_counter() - start
    return wall, dict(clock.totals), recorder.sent, calls


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--moves", type=int, default=5)
    parser.add_argument("--no-signature-certificate", action="store_true")
    args = parser.parse_args()
    reissue = not args.no_signature_certificate
    with bench_station(1, "juki-bench-counter-") as (station, rig, home):
        settings = station.home.settings()
        rig.insert_card(0, home / "card.json")
        request = dataclasses.replace(BASE, resident_code=new_record_code())
        with PcscTransport(reader_name(0), exclusive=True) as transport:
            issue_resident_card(ApduChannel(transport), station.hsm, station.registry,
                                request, PINS)
        walls, splits, floors = [], [], []
        for round_ in range(args.moves):
            wall, split, apdus, calls = one_move(station, settings, request.resident_code,
                                                 round_, reissue)
            walls.append(wall)
            splits.append(split)
            floors.append((bare_apdus(reader_name(0), apdus), bare_token(station.hsm, calls),
                           len(apdus), len(calls)))
        report(walls, splits, floors, reissue)


def report(walls: list[float], splits: list[dict[str, float]],
           floors: list[tuple[float, float, int, int]], reissue: bool) -> None:
    wall = statistics.median(walls)
    what = "with a new signature certificate" if reissue else "without a new signature certificate"
    print(f"move-in with the card, {what}, {len(walls)} moves (medians, seconds per move-in):")
    print(f"  {'total':16} {wall:6.3f}")
    shares = {w: statistics.median(s[w] for s in splits) for w in splits[0]}
    for name, value in shares.items():
        print(f"  {name:16} {value:6.3f}  ({value / wall:4.0%})")
    rest = wall - sum(shares.values())
    print(f"  {'host (python)':16} {rest:6.3f}  ({rest / wall:4.0%})  SM wrapping, X.509, TLV, "
          "verifier")
    apdu_floor = statistics.median(f[0] for f in floors)
    token_floor = statistics.median(f[1] for f in floors)
    print(f"bare replay of the same {floors[0][2]} APDUs (pyscard transmit): {apdu_floor:.3f} s;"
          f" card I/O without key generation is {shares['card I/O'] / apdu_floor:.2f}x that")
    print(f"bare replay of the same {floors[0][3]} token calls (python-pkcs11, one session): "
          f"{token_floor:.3f} s; HSM time is {shares['HSM'] / token_floor:.2f}x that")
    print(f"move-in total against both floors together: {wall / (apdu_floor + token_floor):.2f}x")


if __name__ == "__main__":
    main()
