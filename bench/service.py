"""The station service's cost: `juki verify` and `juki login` through the service (client
start + request) against the same work in-process, and verifications per second through
the socket from two client processes, each on a card of its own.

    .venv/bin/python bench/service.py [--runs 20] [--seconds 5]

Brings up a rig of its own (stop any other rig first), issues two cards and enrols an
operator through a real `juki station serve` run as the `juki` user, with the clients
as the unprivileged `juki-op` (`make users` creates both). Floors, measured in the same
run: the verification and the login done in-process on an open session (bare
`Verifier.verify` and `OperatorAuthenticator.authenticate` on an open channel), and a
bare interpreter start.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import bench_station  # noqa: E402
from cardlib.channel import ApduChannel  # noqa: E402
from cardlib.pcsc import PcscTransport  # noqa: E402
from tools.operators.login import OperatorAuthenticator  # noqa: E402
from tools.resident.verifier import Verifier  # noqa: E402
from tools.rig.rig import reader_name  # noqa: E402
from tools.rig.service import OPERATOR_USER, Service, as_user, operator_file, start_service  # noqa: E402
from tools.station.pins import Pin  # noqa: E402

OPERATOR_PIN = "135792"


def wall(command: list[str], runs: int, env: dict[str, str], cwd: Path,
         stdin: str | None = None) -> float:
    """Median seconds of ``command`` (a fresh process each time) over ``runs``."""
    times = []
    for _ in range(runs + 1):
        start = time.perf_counter()
        subprocess.run(command, env=env, cwd=cwd, check=True, capture_output=True, input=stdin,
                       text=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def _client_loop(socket_path: str, reader: str, pin_file: str, seconds: float,
                 results: multiprocessing.Queue) -> None:
    from tools.service.client import run

    done, deadline = 0, time.monotonic() + seconds
    with redirect_stdout(io.StringIO()):
        while time.monotonic() < deadline:
            assert run(socket_path, ["verify", "--reader", reader, "--pin-file", pin_file,
                                     "--json"]) == 0
            done += 1
    results.put(done)


def throughput(service: Service, readers: list[str], seconds: float) -> float:
    """Verifications/s through the socket, one client process per reader (as juki-op)."""
    results: multiprocessing.Queue = multiprocessing.Queue()
    clients = [multiprocessing.Process(target=_client_loop,
                                       args=(str(service.socket), r,
                                             str(service.work / "pins.txt"), seconds, results))
               for r in readers]
    for client in clients:
        client.start()
    for client in clients:
        client.join()
    return sum(results.get() for _ in clients) / seconds


def in_process_floors(station, readers: list[str], runs: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    verifier = Verifier.for_station(station.registry, station.hsm, station.home.settings())
    with PcscTransport(readers[0], exclusive=True) as transport:
        channel = ApduChannel(transport)
        start = time.perf_counter()
        for _ in range(runs):
            assert verifier.verify(channel, ("pin", Pin("7319"))).genuine
        verify = (time.perf_counter() - start) / runs
    authenticator = OperatorAuthenticator(station.registry, station.hsm, station.home.operator_policy(),
                                          station_id=station.home.station_id())
    with PcscTransport(readers[1], exclusive=True) as transport:
        channel = ApduChannel(transport)
        start = time.perf_counter()
        for _ in range(runs):
            authenticator.authenticate(channel, Pin(OPERATOR_PIN))
        login = (time.perf_counter() - start) / runs
    return verify, login


def prepare(service: Service, rig_home: Path) -> list[str]:
    """Two resident cards issued and one operator enrolled, all through the service."""
    readers = [reader_name(0), reader_name(1)]
    operator_file(service, "pins.txt", "card_info=7319\njpki_auth=2468\njpki_sign=SIGN2026\n")
    for slot, name in enumerate(("resident-yamada.json", "resident-suzuki.json")):
        request = json.loads((ROOT / "fixtures" / "requests" / name).read_text(encoding="utf-8"))
        operator_file(service, name, json.dumps(request, ensure_ascii=False), 0o644)
        service.client("issue", "resident", name, "--reader", readers[slot], "--pin-file", "pins.txt")
    subprocess.run([sys.executable, "-m", "tools", "--home", str(rig_home), "rig", "insert",
                    "--slot", "2", "--kind", "operator", "--state", str(service.base / "op.json")],
                   check=True, capture_output=True, cwd=ROOT)
    operator_file(service, "op-pins.txt", f"operator_pin={OPERATOR_PIN}\noperator_puk=24682468\n")
    service.client("operator", "enroll", "--id", "bench-op", "--name", "Bench", "--municipality",
                   "131016", "--scopes", "verify", "--reader", reader_name(2), "--pin-file",
                   "op-pins.txt")
    return readers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    with bench_station(5, "juki-bench-service-") as (station, _rig, rig_home):
        service = start_service(rig_home)
        try:
            readers = prepare(service, rig_home)
            env = {"PATH": os.environ["PATH"], "JUKI_SOCKET": str(service.socket), "LANG": "C.UTF-8"}
            client = [*as_user(OPERATOR_USER), sys.executable, "-m", "tools"]
            bare = wall([*as_user(OPERATOR_USER), sys.executable, "-c", "pass"], args.runs, env,
                        service.work)
            verify = wall([*client, "verify", "--reader", readers[0], "--pin-file", "pins.txt"],
                          args.runs, env, service.work)
            login = wall([*client, "login", "--reader", reader_name(2)], args.runs, env,
                         service.work, stdin=f"{OPERATOR_PIN}\n")
            rate = throughput(service, readers, args.seconds)
        finally:
            log = service.stop()
        floor_verify, floor_login = local_floors(station, rig_home, args.runs)
    print(f"{'measure':58} {'result':>12}")
    print(f"{'bare interpreter start (floor of any command)':58} {bare * 1000:9.1f} ms")
    print(f"{'verification in-process, open channel (floor)':58} {floor_verify * 1000:9.1f} ms")
    print(f"{'`juki verify` through the service (client start + request)':58} {verify * 1000:9.1f} ms"
          f"  ({verify / floor_verify:.1f}x the in-process work)")
    print(f"{'operator login in-process, open channel (floor)':58} {floor_login * 1000:9.1f} ms")
    print(f"{'`juki login` through the service (client start + request)':58} {login * 1000:9.1f} ms"
          f"  ({login / floor_login:.1f}x the in-process work)")
    print(f"{'verifications/s through the socket, 2 client processes':58} {rate:9.0f} /s"
          f"  ({rate * floor_verify:.2f}x one in-process verifier)")
    if "Traceback" in log:
        print(log, file=sys.stderr)


def local_floors(station, rig_home: Path, runs: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """The same work in-process on the rig's own station (root's, as a station of one's
    own): a card issued in slot 3 and an operator enrolled in slot 4 by the local CLI."""
    def local(*args: str) -> None:
        subprocess.run([sys.executable, "-m", "tools", "--home", str(rig_home), *args],
                       check=True, capture_output=True, cwd=ROOT, env=os.environ | {"JUKI_SOCKET": "none"})

    pins = rig_home / "floor-pins.txt"
    pins.write_text("card_info=7319\njpki_auth=2468\njpki_sign=SIGN2026\n"
                    f"operator_pin={OPERATOR_PIN}\noperator_puk=24682468\n")
    os.chmod(pins, 0o600)
    local("issue", "resident", str(ROOT / "fixtures" / "requests" / "resident-yamada.json"),
          "--reader", reader_name(3), "--pin-file", str(pins))
    local("rig", "insert", "--slot", "4", "--kind", "operator", "--state",
          str(rig_home / "floor-operator.json"))
    local("operator", "enroll", "--id", "floor-op", "--name", "Floor", "--municipality", "131016",
          "--scopes", "verify", "--reader", reader_name(4), "--pin-file", str(pins))
    return in_process_floors(station, [reader_name(3), reader_name(4)], runs)


if __name__ == "__main__":
    main()
