"""Operator login figures, against the raw floor measured in the same run.

    .venv/bin/python bench/login.py [--n 200] [--seconds 5]

Brings up a rig of its own (stop any other rig first), enrols two operators on emulated
PIV cards (P-256 login keys), then measures:
  1. one login in process (card checks + PIN + GENERAL AUTHENTICATE + token checks, then
     the session written and the registry updated) against the floor: replaying the same
     APDU bytes with bare pyscard plus the bare python-pkcs11 operations a login needs
     (32 random bytes, one ECDSA verify, one AES-CMAC);
  2. the wall time of one `juki login` command (a fresh interpreter);
  3. logins per second on one reader, and with two readers in two processes at once.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature  # noqa: E402
from pkcs11 import Attribute, Mechanism  # noqa: E402
from pkcs11.util.ec import decode_ec_public_key  # noqa: E402
from smartcard.System import readers  # noqa: E402

from bench.common import bench_station  # noqa: E402
from bench.run import Recorder, rate  # noqa: E402
from cardlib.channel import ApduChannel  # noqa: E402
from cardlib.pcsc import PcscTransport  # noqa: E402
from hsm.keys import current_version, role_key  # noqa: E402
from hsm.roles import KeyRole  # noqa: E402
from tools.operators.enrolment import EnrolmentRequest, enrol_operator  # noqa: E402
from tools.operators.login import OperatorAuthenticator  # noqa: E402
from tools.operators.session import start_session  # noqa: E402
from tools.rig.rig import reader_name  # noqa: E402
from tools.service.context import Station  # noqa: E402
from tools.station.pins import Pin  # noqa: E402

PIN = Pin("135792")


def login_once(station: Station, authenticator: OperatorAuthenticator, channel: ApduChannel) -> None:
    operator = authenticator.authenticate(channel, PIN)
    start_session(station.home, station.hsm, station.registry, operator)


def bare_hsm_rate(station: Station, n: int) -> float:
    """Logins' worth of bare python-pkcs11 work per second: random, ECDSA verify, CMAC."""
    key = ec.generate_private_key(ec.SECP256R1())
    message = b"x" * 32
    r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    digest = hashlib.sha256(message).digest()
    spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    version = current_version(station.hsm, KeyRole.OPERATOR_SESSION_MAC)
    with station.hsm.locked() as p11:
        public = p11.create_object({**decode_ec_public_key(spki), Attribute.TOKEN: False,
                                    Attribute.VERIFY: True})
        mac_key = role_key(p11, KeyRole.OPERATOR_SESSION_MAC, version)

        def work() -> None:
            p11.generate_random(256)
            public.verify(digest, raw, mechanism=Mechanism.ECDSA)
            mac_key.sign(b"s" * 300, mechanism=Mechanism.AES_CMAC)

        return rate(work, n)


def worker(home: str, reader: str, seconds: float, start_at: float, out) -> None:  # type: ignore[no-untyped-def]
    station = Station(Path(home))
    authenticator = OperatorAuthenticator(station.registry, station.hsm,
                                          station.home.operator_policy(),
                                          station_id=station.home.station_id())
    while time.time() < start_at:
        time.sleep(0.001)
    count, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        with PcscTransport(reader, exclusive=True) as transport:
            authenticator.authenticate(ApduChannel(transport), PIN)
        count += 1
    out.put(count)


def parallel_rate(home: Path, slots: list[int], seconds: float) -> float:
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    start_at = time.time() + 3.0  # after every worker has imported and opened the token
    processes = [context.Process(target=worker, args=(str(home), reader_name(s), seconds,
                                                      start_at, out)) for s in slots]
    for p in processes:
        p.start()
    total = sum(out.get(timeout=120) for _ in processes)
    for p in processes:
        p.join()
    return total / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    with bench_station(0, "juki-bench-login-") as (station, rig, home):
        for slot in (0, 1):
            rig.insert_card(slot, home / f"op-{slot}.json", kind="operator")
            with PcscTransport(reader_name(slot), exclusive=True) as transport:
                enrol_operator(ApduChannel(transport), station.hsm, station.registry,
                               EnrolmentRequest(f"bench-{slot}", "Bench", "131016",
                                                frozenset({"verify"}), None, 0x11),
                               PIN, Pin("24682468"), None)
        authenticator = OperatorAuthenticator(station.registry, station.hsm,
                                              station.home.operator_policy(),
                                              station_id=station.home.station_id())
        reader = reader_name(0)
        with PcscTransport(reader, exclusive=True) as transport:
            recorder = Recorder(transport)
            authenticator.authenticate(ApduChannel(recorder), PIN)
            apdus = [list(a) for a in recorder.sent]
            channel = ApduChannel(transport)
            ours_auth = rate(lambda: authenticator.authenticate(channel, PIN), args.n)
            ours_full = rate(lambda: login_once(station, authenticator, channel), args.n)
        connection = next(r for r in readers() if str(r) == reader).createConnection()
        connection.connect()
        bare_apdus = rate(lambda: [connection.transmit(a) for a in apdus], args.n)
        connection.disconnect()
        connection.release()
        bare_hsm = bare_hsm_rate(station, args.n)
        floor_seconds = 1 / bare_apdus + 1 / bare_hsm

        walls = []
        for _ in range(5):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "tools", "--home", str(home), "login",
                            "--reader", reader], input="135792\n", text=True, check=True,
                           capture_output=True)
            walls.append(time.perf_counter() - start)

        one_reader = parallel_rate(home, [0], args.seconds)
        two_readers = parallel_rate(home, [0, 1], args.seconds)

    print(f"login APDUs: {len(apdus)} (SELECT, CHUID, certificate with GET RESPONSE, VERIFY, "
          "GENERAL AUTHENTICATE)")
    print(f"floor: bare pyscard replay {1000 / bare_apdus:.2f} ms + bare python-pkcs11 "
          f"{1000 / bare_hsm:.2f} ms = {1000 * floor_seconds:.2f} ms")
    print(f"login in process (checks only):        {1000 / ours_auth:.2f} ms = "
          f"{1 / (floor_seconds * ours_auth):.2f}x the floor")
    print(f"login in process (+ session, registry): {1000 / ours_full:.2f} ms = "
          f"{1 / (floor_seconds * ours_full):.2f}x the floor")
    print(f"`juki login` wall time: median {1000 * statistics.median(walls):.0f} ms "
          f"(min {1000 * min(walls):.0f}, max {1000 * max(walls):.0f})")
    print(f"logins/s, 1 reader (1 process, connect per login): {one_reader:.1f}")
    print(f"logins/s, 2 readers (2 processes in parallel):     {two_readers:.1f} "
          f"({two_readers / one_reader:.2f}x)")


if __name__ == "__main__":
    main()
