"""Provision-log figures at scale, each against the same run's floor:

- `audit verify` (``verify_log``: anchored on the latest signed checkpoint, two worker
  processes) over 100,000 and 1,000,000 entries on SQLite and PostgreSQL, with a
  checkpoint at size - TAIL and a TAIL of entries after it (own MACs and batch MACs to
  check in the token); entries/s, wall and CPU seconds (parent + workers: CPU over wall
  is the number of cores used). The floor: a bare ``SELECT`` of the same rows in one
  process, plus bare SHA-256 over the same entry bytes.
- one resident's disclosure (``disclose``: recorded, a fresh checkpoint, the entries by
  index, each with its inclusion proof) in the 1,000,000-entry logs and in a
  10,000,000-entry SQLite log (with the query plan); the floor: the bare indexed SELECT.

Appends per second are bench/provide.py's (group commit, SQLite and two PostgreSQL
stations), no longer measured here.

    .venv/bin/python bench/audit.py [--sizes 100000,1000000] [--big 10000000] [--pg URL]

Needs only a SoftHSM token (no readers). URL (default $JUKI_TEST_POSTGRES) may create
databases; without one the PostgreSQL figures are skipped. Logs are built in bulk, as
appends would write them: group commits of 63 entries (one batch MAC from the token)
each followed by one entry with its own MAC, every Merkle node, the checkpoint, the
token head; `verify_log` then proves the bulk log is what appends make. The 10M log
is built without MACs (nothing verifies it; the disclosure needs none) -- say so.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pkcs11 import Mechanism  # noqa: E402

from hsm.keys import current_version, role_key  # noqa: E402
from hsm.roles import KeyRole  # noqa: E402
from hsm.station_keys import ensure_station_keys  # noqa: E402
from tools.audit import anchors, checkpoints, log, merkle  # noqa: E402
from tools.audit.batches import batch_message  # noqa: E402
from tools.audit.checkpoints import make_checkpoint  # noqa: E402
from tools.audit.disclosure import disclose  # noqa: E402
from tools.audit.provision import Release  # noqa: E402
from tools.audit.verify import verify_log  # noqa: E402
from tools.registry import Registry  # noqa: E402
from tools.rig.rig import Rig  # noqa: E402
from tools.station.home import StationHome  # noqa: E402

RELEASE = Release("bench", "Asia/Tokyo", None, "NENKIN", "B1-57")
RESIDENTS = 100_000
TAIL = 10_000
GROUP = 63  # a group commit's entries; then one entry with its own MAC
SLICE = 200_000  # rows per insert
ENTRY = ('{{"card_serial":null,"detail":null,"fields":["name"],"index":{index},"kind":'
         '"provision","operator":null,"purpose":"B1-57","recipient":"NENKIN","record_code":'
         'null,"resident_id":{resident},"station":"bench","time_local":'
         '"2026-11-27T09:00:00+09:00","time_utc":"2026-11-27T00:00:00+00:00"}}')
WHO = 4242  # the resident disclosed


def token_home() -> StationHome:
    home = StationHome(Path(tempfile.mkdtemp(prefix="juki-bench-audit-")))
    Rig(home).ensure_token()
    ensure_station_keys(home.open_token())
    return home


def entry(index: int) -> str:
    return ENTRY.format(index=index, resident=index % RESIDENTS)


class Bulk:
    """Appends in bulk: the same rows, nodes, batch rows and MACs as `record`/`record_many`."""

    def __init__(self, registry: Registry, hsm: Any, macs: bool = True) -> None:
        self.registry, self.hsm, self.macs = registry, hsm, macs
        self.version = current_version(hsm, KeyRole.AUDIT_ENTRY_MAC)
        self.stack: list[tuple[int, bytes]] = []
        self.size = 0

    def _groups(self, sign: Any, end: int) -> Iterator[tuple[list[tuple], list[tuple], list[tuple]]]:
        rows: list[tuple] = []
        nodes: list[tuple] = []
        batches: list[tuple] = []
        while self.size < end:
            start = self.size
            count = min(GROUP + 1, end - start)
            leaves = []
            for index in range(start, start + count):
                raw = entry(index)
                leaf = merkle.leaf_hash(raw.encode())
                leaves.append(leaf)
                own = self.macs and index == start + GROUP
                tag = sign(leaf) if own else b""
                rows.append((index, raw, "provision", index % RESIDENTS, tag, self.version))
                self._push(index, leaf, nodes)
            batch_end = min(start + GROUP, start + count)
            if self.macs:
                root = merkle.root_of(leaves[:batch_end - start])
                batches.append((start, batch_end, sign(batch_message(start, batch_end, root)),
                                self.version))
            self.size = start + count
            if len(rows) >= SLICE or self.size == end:
                yield rows, nodes, batches
                rows, nodes, batches = [], [], []

    def _push(self, index: int, leaf: bytes, nodes: list[tuple]) -> None:
        nodes.append((0, index, leaf))
        height, value = 0, leaf
        while self.stack and self.stack[-1][0] == height:
            value = merkle.node_hash(self.stack.pop()[1], value)
            height += 1
            nodes.append((height, index >> height, value))
        self.stack.append((height, value))

    def append(self, count: int) -> None:
        with self.hsm.locked() as session:
            key = role_key(session, KeyRole.AUDIT_ENTRY_MAC, self.version)
            sign = lambda data: bytes(key.sign(data, mechanism=Mechanism.AES_CMAC))  # noqa: E731
            for rows, nodes, batches in self._groups(sign, self.size + count):
                with self.registry.transaction() as db:  # a transaction per slice
                    insert(db, "provision_log", "idx, entry, kind, resident_id, mac, "
                                                "mac_version", rows)
                    insert(db, "merkle_nodes", "level, position, hash", nodes)
                    insert(db, "log_batches", "start_idx, end_idx, mac, mac_version", batches)


def insert(db: Any, table: str, columns: str, rows: list[tuple]) -> None:
    if not rows:
        return
    if db.dialect == "postgresql":  # COPY: executemany would dominate the build
        with db._db.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join("?" * len(columns.split(",")))
    db.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)


def build(registry: Registry, hsm: Any, size: int, notes: Path, macs: bool = True,
          tail: int = TAIL) -> float:
    """The log of ``size`` entries: a checkpoint at ``size - tail``, the tail after it,
    the token head at ``size``; seconds taken. The bulk checkpoint signs the stored root
    without ``checkpoint_guard``'s proof (which would check every bulk MAC in this one
    process first); every later checkpoint is guarded."""
    began = time.perf_counter()
    bulk = Bulk(registry, hsm, macs)
    bulk.append(size - tail)
    guarded = checkpoints.proven_root
    checkpoints.proven_root = lambda db, _hsm, _previous, n, _trust=None: log.root(db, n)  # type: ignore[assignment]
    try:
        make_checkpoint(registry, hsm, notes)
    finally:
        checkpoints.proven_root = guarded
    bulk.append(tail)
    with registry.transaction() as db:
        anchors.write_head(hsm, db, size, merkle.fold(bulk.stack))
    registry.connection().execute("ANALYZE")
    return time.perf_counter() - began


def checkpoint_figure(registry: Registry, hsm: Any, notes: Path, tail: int) -> None:
    began = time.perf_counter()
    make_checkpoint(registry, hsm, notes)
    print(f"  checkpoint over the {tail:,}-entry tail (every MAC checked in the token first): "
          f"{1000 * (time.perf_counter() - began):.0f} ms")


def floor(db: Any) -> tuple[float, float]:
    """Seconds of a bare SELECT of every row (one process), and of bare SHA-256 over
    the same entry bytes."""
    began = time.perf_counter()
    rows = db.execute("SELECT idx, entry, mac, mac_version, kind, resident_id "
                      "FROM provision_log ORDER BY idx").fetchall()
    selected = time.perf_counter() - began
    raw = [r[1].encode() for r in rows]
    began = time.perf_counter()
    for data in raw:
        hashlib.sha256(b"\x00" + data).digest()
    return selected, time.perf_counter() - began


def cpu() -> float:
    mine, children = (resource.getrusage(who) for who in (resource.RUSAGE_SELF,
                                                           resource.RUSAGE_CHILDREN))
    return mine.ru_utime + mine.ru_stime + children.ru_utime + children.ru_stime


def verify_figure(registry: Registry, hsm: Any, notes: Path, size: int, label: str) -> None:
    db = registry.connection()
    selected, hashed = floor(db)
    used, began = cpu(), time.perf_counter()
    verdict = verify_log(db, hsm, notes)
    took, used = time.perf_counter() - began, cpu() - used
    state = "intact" if verdict.ok and verdict.size == size else f"NOT OK: {verdict.problem}"
    load = os.getloadavg()[0]
    print(f"  `audit verify` {label} {size:>9,} entries (load {load:.1f}): {took:5.2f} s "
          f"({size / took:>9,.0f} entries/s), CPU {used:5.2f} s = {used / took:.2f} cores; floor: SELECT "
          f"{selected:.2f} s + SHA-256 {hashed:.2f} s = {selected + hashed:.2f} s; {state}")


def disclosure_figure(registry: Registry, hsm: Any, notes: Path, size: int, label: str) -> None:
    db = registry.connection()
    sql, params = log.resident_query(db, WHO)
    began = time.perf_counter()
    rows = db.execute(sql, params).fetchall()
    bare = time.perf_counter() - began
    times = []
    for _ in range(5):  # each one is recorded and proven: one more entry each time
        began = time.perf_counter()
        report, _ = disclose(registry, hsm, RELEASE, WHO, ["provision_record"],
                             checkpoints_file=notes)
        times.append(time.perf_counter() - began)
    first, took = times[0], sorted(times)[2]
    ok = all(e.proof_verified for e in report.entries) and len(report.entries) == len(rows) + 5
    explain = "EXPLAIN QUERY PLAN " if db.dialect == "sqlite" else "EXPLAIN "
    plan = [str(r[-1] if db.dialect == "sqlite" else r[0]).strip()
            for r in db.execute(explain + sql, params)]
    print(f"  disclosure {label} {size:>10,} entries: median of 5 {1000 * took:6.1f} ms, the "
          f"first {1000 * first:.1f} ms ({len(report.entries)} "
          f"entries, each with its inclusion proof{', all verify' if ok else ', NOT ALL VERIFY'}); "
          f"floor: the bare SELECT {1000 * bare:.1f} ms; plan: {' / '.join(plan)}")


def postgres_registry(admin_url: str) -> tuple[Registry, str]:
    import secrets

    import psycopg

    name = f"juki_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as db:
        db.execute(f"CREATE DATABASE {name}")
    base, _, query = admin_url.partition("?")
    return Registry(f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")), name


def drop(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as db:
        db.execute(f"DROP DATABASE {name} WITH (FORCE)")


def run_one(home: StationHome, hsm: Any, size: int, pg: str | None, disclose_too: bool) -> None:
    notes = home.root / f"checkpoints-{size}-{'pg' if pg else 'sqlite'}"
    registry, name = (postgres_registry(pg) if pg else
                      (Registry(home.root / f"log-{size}.sqlite"), ""))
    label = "PostgreSQL" if pg else "SQLite    "
    try:
        built = build(registry, hsm, size, notes)
        print(f"  ({label.strip()} log of {size:,} entries built in {built:.1f} s)")
        verify_figure(registry, hsm, notes, size, label)
        checkpoint_figure(registry, hsm, notes, TAIL)
        if disclose_too:
            disclosure_figure(registry, hsm, notes, size, label)
    finally:
        registry.close()
        if pg:
            drop(pg, name)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--big", type=int, default=10_000_000, help="0: skip")
    parser.add_argument("--pg", default=os.environ.get("JUKI_TEST_POSTGRES"))
    args = parser.parse_args()
    assert entry(7) == log.canonical({"time_utc": "2026-11-27T00:00:00+00:00", "time_local":
                                      "2026-11-27T09:00:00+09:00", "station": "bench",
                                      "operator": None, "recipient": "NENKIN", "purpose":
                                      "B1-57", "fields": ["name"], "resident_id": 7,
                                      "record_code": None, "card_serial": None, "detail": None,
                                      "index": 7, "kind": "provision"}).decode()
    home = token_home()
    try:
        run(home, args)
    finally:  # the logs are gigabytes
        shutil.rmtree(home.root, ignore_errors=True)


def run(home: StationHome, args: argparse.Namespace) -> None:
    hsm = home.open_token()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{os.cpu_count()} cores (load average {os.getloadavg()[0]:.1f} at the start: other "
          f"processes share them); checkpoint at size - {TAIL:,}; groups of {GROUP} + 1 own MAC")
    for size in sizes:
        for pg in [None, *([args.pg] if args.pg else [])]:
            run_one(home, hsm, size, pg, disclose_too=size == max(sizes))
    if not args.pg:
        print("  PostgreSQL: skipped (no --pg / JUKI_TEST_POSTGRES)")
    if args.big:
        registry = Registry(home.root / "log-big.sqlite")
        notes = home.root / "checkpoints-big"
        built = build(registry, hsm, args.big, notes, macs=False, tail=0)
        print(f"  (SQLite log of {args.big:,} entries built in {built:.1f} s, without MACs: "
              "not verifiable, the disclosure reads none)")
        disclosure_figure(registry, hsm, notes, args.big, "SQLite    ")
        registry.close()


if __name__ == "__main__":
    main()
