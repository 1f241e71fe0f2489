"""Provision-log figures: appends per second (one station on SQLite; two stations at
once on one PostgreSQL registry), `audit verify` over 100,000 and 1,000,000 entries, and
one resident's disclosure in the 1,000,000-entry log (by index: the query plan is shown).

    .venv/bin/python bench/audit.py [--sizes 100000,1000000] [--pg ADMIN_URL]

Needs only a SoftHSM token (no readers). ADMIN_URL (default $JUKI_TEST_POSTGRES) is a
PostgreSQL URL allowed to create databases; without one the PostgreSQL figure is skipped.
Large logs are built in bulk (same entries, MACs from the token, nodes, in one
transaction); `verify_log` then proves the bulk log is exactly what appends make.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pkcs11 import Mechanism  # noqa: E402

from hsm.keys import current_version, role_key  # noqa: E402
from hsm.roles import KeyRole  # noqa: E402
from hsm.station_keys import ensure_station_keys  # noqa: E402
from tools.audit import log, merkle  # noqa: E402
from tools.audit.anchors import checkpoints_path  # noqa: E402
from tools.audit.checkpoints import make_checkpoint  # noqa: E402
from tools.audit.disclosure import disclose  # noqa: E402
from tools.audit.provision import Release, record  # noqa: E402
from tools.audit.verify import verify_log  # noqa: E402
from tools.registry import Registry  # noqa: E402
from tools.rig.rig import Rig  # noqa: E402
from tools.station.home import StationHome  # noqa: E402

RELEASE = Release("bench", "Asia/Tokyo", None, "NENKIN", "B1-57")
RESIDENTS = 100_000


def token_home() -> StationHome:
    home = StationHome(Path(tempfile.mkdtemp(prefix="juki-bench-audit-")))
    Rig(home).ensure_token()
    ensure_station_keys(home.open_token())
    return home


def appends_per_second(registry: Registry, hsm, count: int) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    for i in range(count):
        record(registry, hsm, RELEASE, kind="provision", fields=["name"],
               resident_id=i % RESIDENTS, record_code=None, card_serial=None)
    return count / (time.perf_counter() - start)


def appender(home: str, url: str, seconds: float, start_at: float, out) -> None:  # type: ignore[no-untyped-def]
    station = StationHome(Path(home))
    hsm, registry = station.open_token(), Registry(url)
    while time.time() < start_at:
        time.sleep(0.001)
    count, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        record(registry, hsm, RELEASE, kind="provision", fields=["name"],
               resident_id=count % RESIDENTS, record_code=None, card_serial=None)
        count += 1
    out.put(count)


def concurrent_postgres(home: StationHome, admin_url: str, seconds: float) -> tuple[float, str]:
    import psycopg

    name = f"juki_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as db:
        db.execute(f"CREATE DATABASE {name}")
    base, _, query = admin_url.partition("?")
    url = f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")
    Registry(url).close()  # migrate once
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    start_at = time.time() + 3.0
    workers = [context.Process(target=appender, args=(str(home.root), url, seconds, start_at, out))
               for _ in range(2)]
    for w in workers:
        w.start()
    total = sum(out.get(timeout=300) for _ in workers)
    for w in workers:
        w.join()
    registry = Registry(url)
    hsm = home.open_token()
    make_checkpoint(registry, hsm, checkpoints_path(home.root))
    verdict = verify_log(registry.connection(), hsm, checkpoints_path(home.root))
    indexes = registry.connection().execute("SELECT count(*), min(idx), max(idx) FROM provision_log"
                                        ).fetchone()
    registry.close()
    with psycopg.connect(admin_url, autocommit=True) as db:
        db.execute(f"DROP DATABASE {name} WITH (FORCE)")
    note = (f"{indexes[0]} entries, indexes {indexes[1]}..{indexes[2]}, verify "
            f"{'ok' if verdict.ok else 'FAILED: ' + str(verdict.problem)}")
    return total / seconds, note


def bulk_log(registry: Registry, hsm, count: int) -> None:  # type: ignore[no-untyped-def]
    """``count`` entries as appends would write them, in one transaction."""
    version = current_version(hsm, KeyRole.AUDIT_ENTRY_MAC)
    stamp = "2026-11-27T00:00:00+00:00"
    rows, nodes, stack = [], [], []
    with hsm.locked() as session:
        key = role_key(session, KeyRole.AUDIT_ENTRY_MAC, version)
        for index in range(count):
            resident = index % RESIDENTS
            entry = log.canonical({"time_utc": stamp, "time_local": "2026-11-27T09:00:00+09:00",
                                   "station": "bench", "operator": None, "recipient": "NENKIN",
                                   "purpose": "B1-57", "fields": ["name"], "resident_id": resident,
                                   "record_code": None, "card_serial": None, "detail": None,
                                   "index": index, "kind": "provision"})
            leaf = merkle.leaf_hash(entry)
            rows.append((index, entry.decode(), "provision", resident,
                         bytes(key.sign(leaf, mechanism=Mechanism.AES_CMAC)), version))
            nodes.append((0, index, leaf))
            height, value, position = 0, leaf, index
            while stack and stack[-1][0] == height:
                value = merkle.node_hash(stack.pop()[1], value)
                height, position = height + 1, position >> 1
                nodes.append((height, position, value))
            stack.append((height, value))
    with registry.transaction() as db:
        db.executemany("INSERT INTO provision_log (idx, entry, kind, resident_id, mac, "
                       "mac_version) VALUES (?, ?, ?, ?, ?, ?)", rows)
        db.executemany("INSERT INTO merkle_nodes (level, position, hash) VALUES (?, ?, ?)",
                           nodes)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--pg", default=os.environ.get("JUKI_TEST_POSTGRES"))
    args = parser.parse_args()
    home = token_home()
    hsm = home.open_token()
    registry = Registry(home.root / "appends.sqlite")
    print(f"appends/s, one station, SQLite: {appends_per_second(registry, hsm, args.appends):.0f}")
    if args.pg:
        rate, note = concurrent_postgres(home, args.pg, args.seconds)
        print(f"appends/s, two stations at once, one PostgreSQL registry: {rate:.0f} ({note})")
    else:
        print("appends/s on PostgreSQL: skipped (no --pg / JUKI_TEST_POSTGRES)")
    for size in (int(s) for s in args.sizes.split(",")):
        registry = Registry(home.root / f"log-{size}.sqlite")
        start = time.perf_counter()
        bulk_log(registry, hsm, size)
        make_checkpoint(registry, hsm, checkpoints_path(home.root))
        built = time.perf_counter() - start
        start = time.perf_counter()
        verdict = verify_log(registry.connection(), hsm, checkpoints_path(home.root))
        took = time.perf_counter() - start
        print(f"{size:>9} entries: built in {built:.1f} s; `audit verify` {took:.1f} s "
              f"({size / took:,.0f} entries/s), {'intact' if verdict.ok else verdict.problem}")
        if size >= 1_000_000 or size == max(int(s) for s in args.sizes.split(",")):
            plan = registry.connection().execute(
                "EXPLAIN QUERY PLAN SELECT idx, entry FROM provision_log WHERE resident_id = ? "
                "ORDER BY idx", (4242,)).fetchall()
            start = time.perf_counter()
            report, _ = disclose(registry, hsm, RELEASE, 4242, ["provision_record"],
                                 checkpoints_file=checkpoints_path(home.root))
            took = time.perf_counter() - start
            print(f"disclosure of one resident ({len(report.entries)} entries, each with its "
                  f"inclusion proof) in the {size}-entry log: {1000 * took:.1f} ms; plan: "
                  f"{' / '.join(str(row[-1]) for row in plan)}")


if __name__ == "__main__":
    main()
