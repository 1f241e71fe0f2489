"""Group-committed provision figures, each against the same run's floor:

- appends/s on SQLite with group commit (``provision.record_many``, chunks of --chunk):
  the floor is bare SQLite ``executemany`` of the same rows (one transaction per chunk,
  synchronous=FULL) plus bare SHA-256 over the same entry bytes;
- appends/s on PostgreSQL from 2 station processes at once (each its own connection and
  token session): the floor is bare ``executemany`` of the same rows from 2 processes;
- single appends (``provision.record``: one entry, its MAC, its attestation signature,
  the token head, one fsynced transaction), with the attestation's share: the floor is
  the bare token Ed25519 signature (python-pkcs11) it adds;
- `juki provide batch` of 10,000 and 100,000 record codes as a child process (the CLI as
  typed), wall time and the child's peak RSS (``wait4``).

    .venv/bin/python bench/provide.py [--entries 100000] [--sizes 10000,100000] [--pg URL]

Needs only a SoftHSM token (no readers). URL (default $JUKI_TEST_POSTGRES) may create
databases; without one the PostgreSQL figures are skipped. Residents are inserted in bulk.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import multiprocessing
import os
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hsm import eddsa  # noqa: E402
from hsm.keys import current_version  # noqa: E402
from hsm.roles import KeyRole  # noqa: E402
from hsm.station_keys import ensure_station_keys  # noqa: E402
from tools.audit import log, provision  # noqa: E402
from tools.audit.provision import Provided, Release, record, record_many  # noqa: E402
from tools.registry import Registry, new_record_code  # noqa: E402
from tools.rig.rig import Rig  # noqa: E402
from tools.station.home import StationHome  # noqa: E402

RELEASE = Release("bench", "Asia/Tokyo", None, "NENKIN", "B1-57")
FIELDS = ("address", "birth_date", "name", "record_code", "sex")
LAUNCHER = """
import json, resource, subprocess, sys
child = subprocess.run(json.loads(sys.argv[1]), capture_output=True, text=True, check=False)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps([child.returncode, peak, child.stdout, child.stderr]))
"""


def token_home() -> StationHome:
    home = StationHome(Path(tempfile.mkdtemp(prefix="juki-bench-provide-")))
    Rig(home).ensure_token()
    ensure_station_keys(home.open_token())
    return home


def items(count: int, first: int = 0) -> list[Provided]:
    return [Provided(FIELDS, first + i, f"{first + i:011d}",
                     f"batch request sha256:{'0' * 64} row {first + i + 1}")
            for i in range(count)]


def group_commits(registry: Registry, hsm, total: int, chunk: int) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    for first in range(0, total, chunk):
        record_many(registry, hsm, RELEASE, items(min(chunk, total - first), first))
    return total / (time.perf_counter() - start)


def same_rows(db, total: int) -> list[tuple]:  # type: ignore[no-untyped-def]
    return [(i, raw, kind, resident, bytes(mac), version) for i, raw, kind, resident, mac, version
            in db.execute("SELECT idx, entry, kind, resident_id, mac, mac_version FROM "
                          "provision_log ORDER BY idx LIMIT ?", (total,))]


def sqlite_floor(rows: list[tuple], chunk: int) -> float:
    path = Path(tempfile.mkdtemp(prefix="juki-bench-floor-")) / "floor.sqlite"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (idx BIGINT PRIMARY KEY, entry TEXT NOT NULL, kind TEXT NOT NULL, "
               "resident_id BIGINT, mac BLOB NOT NULL, mac_version INTEGER NOT NULL)")
    start = time.perf_counter()
    for first in range(0, len(rows), chunk):
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", rows[first:first + chunk])
        db.execute("COMMIT")
    for row in rows:
        hashlib.sha256(b"\x00" + row[1].encode()).digest()
    return len(rows) / (time.perf_counter() - start)


def pg_database(admin_url: str) -> tuple[str, str]:
    import psycopg

    name = f"juki_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as db:
        db.execute(f"CREATE DATABASE {name}")
    base, _, query = admin_url.partition("?")
    return name, f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")


def pg_station(home: str, url: str, seconds: float, chunk: int, start_at: float, out) -> None:  # type: ignore[no-untyped-def]
    hsm, registry = StationHome(Path(home)).open_token(), Registry(url)
    current_version(hsm, KeyRole.AUDIT_ENTRY_MAC)  # open the token before the start
    while time.time() < start_at:
        time.sleep(0.001)
    count, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        record_many(registry, hsm, RELEASE, items(chunk, count))
        count += chunk
    out.put(count)


def pg_bare(url: str, rows: list[tuple], seconds: float, chunk: int, start_at: float, out) -> None:  # type: ignore[no-untyped-def]
    import psycopg

    db = psycopg.connect(url, autocommit=True)
    while time.time() < start_at:
        time.sleep(0.001)
    count, end, offset = 0, time.perf_counter() + seconds, os.getpid() * 10_000_000
    while time.perf_counter() < end:
        with db.transaction(), db.cursor() as cursor:
            cursor.executemany("INSERT INTO t VALUES (%s, %s, %s, %s, %s, %s)",
                               [(offset + count + i, *r[1:]) for i, r in enumerate(rows[:chunk])])
        count += chunk
    out.put(count)


def two_processes(target, args: tuple) -> float:  # type: ignore[no-untyped-def]
    context = multiprocessing.get_context("spawn")
    out, start_at = context.Queue(), time.time() + 3.0
    workers = [context.Process(target=target, args=(*args, start_at, out)) for _ in range(2)]
    for w in workers:
        w.start()
    total = sum(out.get(timeout=600) for _ in workers)
    for w in workers:
        w.join()
    return total / args[-2]


def postgres(home: StationHome, admin_url: str, rows: list[tuple], seconds: float,
             chunk: int) -> None:
    import psycopg

    name, url = pg_database(admin_url)
    Registry(url).close()  # migrate once
    rate = two_processes(pg_station, (str(home.root), url, seconds, chunk))
    registry = Registry(url)
    db = registry.connection()
    size, batches = log.size(db), db.execute("SELECT count(*) FROM log_batches").fetchone()[0]
    rows_stored = db.execute("SELECT count(*) FROM provision_log").fetchone()[0]
    gaps = "no gap" if rows_stored == size else f"{size - rows_stored} GAPS"
    registry.close()
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("CREATE TABLE t (idx BIGINT PRIMARY KEY, entry TEXT NOT NULL, kind TEXT NOT "
                   "NULL, resident_id BIGINT, mac BYTEA NOT NULL, mac_version INTEGER NOT NULL)")
    floor = two_processes(pg_bare, (url, rows, seconds, chunk))
    with psycopg.connect(admin_url, autocommit=True) as db:
        db.execute(f"DROP DATABASE {name} WITH (FORCE)")
    print(f"appends/s, 2 stations at once, one PostgreSQL registry, group commit: {rate:,.0f} "
          f"(target >= 5,000; {size} entries in {batches} batches, {gaps}); floor (bare "
          f"executemany, 2 processes): {floor:,.0f}/s; ratio {rate / floor:.2f}")


def four_of(i: int) -> tuple[str, str, str, str]:
    """Resident ``i``'s name, birth date (about 30,000 distinct days), sex, address."""
    born = dt.date(1930, 1, 1) + dt.timedelta(days=i % 30_000)
    return f"住民　{i}", born.isoformat(), "12"[i % 2], f"東京都千代田区{i}番"


def populate(registry: Registry, count: int) -> list[str]:
    codes: set[str] = set()
    while len(codes) < count:
        codes.add(new_record_code())
    ordered = sorted(codes)
    stamp = "2026-01-01T00:00:00+00:00"
    with registry.transaction() as db:
        db.executemany("INSERT INTO residents (id, created_at) VALUES (?, ?)",
                       [(i + 1, stamp) for i in range(count)])
        db.executemany("INSERT INTO record_codes (code, resident_id, status, assigned_at) "
                       "VALUES (?, ?, 'active', ?)",
                       [(c, i + 1, stamp) for i, c in enumerate(ordered)])
        db.executemany("INSERT INTO resident_identity (resident_id, name, name_kana, birth_date, "
                       "sex, address, updated_at) VALUES (?, ?, NULL, ?, ?, ?, ?)",
                       [(i + 1, *four_of(i), stamp) for i in range(count)])
    return ordered


def provide_batch(home: StationHome, codes: list[str], size: int, four: bool = False) -> None:
    what = "4 information rows" if four else "record codes"
    request = home.root / f"request-{size}{'-four' if four else ''}.csv"
    with request.open("w", encoding="utf-8") as f:
        f.write("name,birth_date,sex,address,ref\n" if four else "record_code,ref\n")
        for i in range(size):
            f.write(",".join(four_of(i % len(codes))) + f",R{i}\n" if four
                    else f"{codes[i % len(codes)]},R{i}\n")
    env = {k: v for k, v in os.environ.items() if k != "JUKI_DB"}
    argv = [sys.executable, "-m", "tools", "--home", str(home.root), "provide", "batch",
            str(request), "--recipient", "NENKIN", "--purpose", "B1-57", "--out",
            str(request.with_suffix(".result.csv")), "--json"]
    start = time.perf_counter()
    # through a small launcher: Linux keeps ru_maxrss across exec, so a child forked
    # from this (large) process would report this process's size as its own peak
    launched = subprocess.run([sys.executable, "-c", LAUNCHER, json.dumps(argv)], cwd=ROOT,
                              env=env, capture_output=True, check=False)
    took = time.perf_counter() - start
    status, maxrss_kib, stdout, stderr = json.loads(launched.stdout)
    if status != 0:
        raise SystemExit(f"provide batch failed: {stderr}")
    summary = json.loads(stdout)
    print(f"provide batch of {size:,} {what}: {took:.1f} s wall (target 100k <= 60 s; "
          f"{summary['seconds']:.1f} s in the command, {size / took:,.0f} rows/s), peak RSS "
          f"{maxrss_kib / 1024:.0f} MiB; {summary['entries']} entries "
          f"{summary['first_index']}..{summary['last_index']}")


class _NoAttestation:
    def __init__(self, *_args: object) -> None:
        pass

    def attest(self, *_args: object) -> None:
        pass


def single_appends(registry: Registry, hsm, count: int = 100, rounds: int = 7) -> None:  # type: ignore[no-untyped-def]
    """Per single append: with its attestation, without it (rounds alternating, medians:
    the fsync varies more than the signature costs), and the bare token signature."""
    def timed(attester: object) -> float:
        provision.Attester = attester  # type: ignore[assignment]
        start = time.perf_counter()
        for i in range(count):
            record(registry, hsm, RELEASE, kind="provision", fields=["name"], resident_id=i,
                   record_code=None, card_serial=None)
        return (time.perf_counter() - start) / count

    real = provision.Attester
    try:
        timed(real)  # warm: the token's log key found once per session
        pairs = [(timed(real), timed(_NoAttestation)) for _ in range(rounds)]
    finally:
        provision.Attester = real  # type: ignore[misc]
    signed = statistics.median(p[0] for p in pairs)
    unsigned = statistics.median(p[1] for p in pairs)
    version = max(eddsa.public_keys(hsm, KeyRole.AUDIT_NOTE_SIGNER))
    start = time.perf_counter()
    for _ in range(count):
        eddsa.sign(hsm, KeyRole.AUDIT_NOTE_SIGNER, version, b"x" * 120)
    bare = (time.perf_counter() - start) / count
    print(f"single append (SQLite, fsynced; medians of {rounds}x{count}): {signed * 1e3:.2f} ms "
          f"with its attestation, {unsigned * 1e3:.2f} ms without; the difference "
          f"{(signed - unsigned) * 1e3:.2f} ms vs the bare token Ed25519 signature "
          f"{bare * 1e3:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=1000)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--pg", default=os.environ.get("JUKI_TEST_POSTGRES"))
    args = parser.parse_args()
    home = token_home()
    hsm = home.open_token()
    registry = Registry(home.root / "appends.sqlite")
    rate = group_commits(registry, hsm, args.entries, args.chunk)
    rows = same_rows(registry.connection(), args.entries)
    floor = sqlite_floor(rows, args.chunk)
    print(f"appends/s, one station, SQLite, group commit of {args.chunk}: {rate:,.0f} (target "
          f">= 10,000); floor (bare executemany + SHA-256, same rows): {floor:,.0f}/s; "
          f"ratio {rate / floor:.2f}")
    single_appends(Registry(home.root / "single.sqlite"), hsm)
    if args.pg:
        postgres(home, args.pg, rows, args.seconds, args.chunk)
    else:
        print("appends/s on PostgreSQL: skipped (no --pg / JUKI_TEST_POSTGRES)")
    sizes = [int(s) for s in args.sizes.split(",")]
    codes = populate(Registry(home.root / "registry.sqlite"), max(sizes))
    for size in sizes:
        provide_batch(home, codes, size)
    provide_batch(home, codes, min(sizes), four=True)


if __name__ == "__main__":
    main()
