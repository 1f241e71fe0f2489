"""Performance figures, each as a ratio against the raw floor measured in the same run.

    .venv/bin/python bench/run.py [--n 2000]

Brings up a rig of its own in a temporary station home (one pcscd per machine: stop
any other rig first), issues one card, then measures:
  1. SELECT through our stack (PcscTransport + ApduChannel + session) vs bare pyscard
     `transmit` on the same emulated card;
  2. challenge-signature checks through `hsm` (lock + cached key object) vs a bare
     python-pkcs11 `verify` on the same token;
  3. one full verification in-process, and the wall time of one `juki verify` command;
  4. flows (`card read --what all` with its integrity check, an SCP03 session open +
     one protected read of the record code, verify, issuance): APDUs each sends, and
     the flow's time against replaying its exact APDU bytes with bare pyscard.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding, rsa  # noqa: E402
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass  # noqa: E402
from smartcard.System import readers  # noqa: E402

from bench.common import bench_station  # noqa: E402
from cardlib.apps.common import CommonApSession  # noqa: E402
from cardlib.channel import ApduChannel  # noqa: E402
from cardlib.constants import Aid  # noqa: E402
from cardlib.pcsc import PcscTransport  # noqa: E402
from hsm.verify import PublicKeyCache  # noqa: E402
from tools.issuance.request import load_request  # noqa: E402
from tools.issuance.resident_card import issue_resident_card  # noqa: E402
from tools.resident.verifier import Verifier  # noqa: E402
from tools.rig.rig import reader_name  # noqa: E402
from tools.service.context import Station  # noqa: E402
from tools.station.pins import Pin, ResidentCardPins  # noqa: E402


def rate(operation, n: int) -> float:  # type: ignore[no-untyped-def]
    """Operations per second: best of three timed runs of ``n`` operations."""
    operation()  # warm up
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(n):
            operation()
        best = min(best, time.perf_counter() - start)
    return n / best


class Recorder:
    """A transport wrapper that keeps every C-APDU a flow sends."""

    def __init__(self, inner: PcscTransport) -> None:
        self.inner, self.sent = inner, []

    def send_and_receive(self, apdu: bytes):  # type: ignore[no-untyped-def]
        self.sent.append(apdu)
        return self.inner.send_and_receive(apdu)

    def close(self) -> None:
        self.inner.close()


def flow_figures(reader: str, name: str, flow, repeat: int) -> tuple[str, int, float]:  # type: ignore[no-untyped-def]
    """(name, APDUs per run, flow time / bare replay time of the same APDUs)."""
    with PcscTransport(reader, exclusive=True) as transport:
        recorder = Recorder(transport)
        flow(ApduChannel(recorder))
        apdus = [list(a) for a in recorder.sent]
        ours = rate(lambda: flow(ApduChannel(transport)), repeat)
    connection = next(r for r in readers() if str(r) == reader).createConnection()
    connection.connect()

    def replay() -> None:
        for apdu in apdus:
            connection.transmit(apdu)

    bare = rate(replay, repeat)
    connection.disconnect()
    connection.release()
    return name, len(apdus), bare / ours


def select_figures(reader: str, n: int, figures: list) -> tuple[float, float]:
    """SELECT through our stack against bare pyscard ``transmit`` on the same card."""
    select = [0x00, 0xA4, 0x04, 0x0C, len(Aid.COMMON), *Aid.COMMON]
    connection = next(r for r in readers() if str(r) == reader).createConnection()
    connection.connect()
    bare_apdu = rate(lambda: connection.transmit(select), n)
    connection.disconnect()
    connection.release()
    with PcscTransport(reader, exclusive=True) as transport:
        session = CommonApSession(ApduChannel(transport))
        ours_apdu = rate(session.select, n)
    figures.append(("SELECT via pyscard transmit (floor)", bare_apdu, "APDU/s"))
    figures.append(("SELECT via cardlib session", ours_apdu, "APDU/s"))
    return ours_apdu, bare_apdu


def verify_figures(station: Station, n: int, figures: list) -> tuple[float, float]:
    """RSA-2048 signature checks through ``hsm`` against bare python-pkcs11 ``verify``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    challenge = os.urandom(32)
    signature = key.sign(challenge, padding.PKCS1v15(), hashes.SHA256())
    numbers = key.public_key().public_numbers()
    with station.hsm.locked() as p11:
        bare_key = p11.create_object({
            Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.KEY_TYPE: KeyType.RSA,
            Attribute.TOKEN: False, Attribute.VERIFY: True,
            Attribute.MODULUS: numbers.n.to_bytes(256, "big"),
            Attribute.PUBLIC_EXPONENT: numbers.e.to_bytes(3, "big")})
        bare_verify = rate(lambda: bare_key.verify(challenge, signature,
                                                   mechanism=Mechanism.SHA256_RSA_PKCS), n)
    cache = PublicKeyCache(station.hsm)
    ours_verify = rate(lambda: cache.verify_rsa_sha256(key.public_key(), challenge, signature),
                       n)
    figures.append(("RSA-2048 verify, bare python-pkcs11 (floor)", bare_verify, "checks/s"))
    figures.append(("RSA-2048 verify via hsm.PublicKeyCache", ours_verify, "checks/s"))
    return ours_verify, bare_verify


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    with bench_station(1, "juki-bench-") as (station, _rig, home):
        reader = reader_name(0)
        request = load_request(ROOT / "fixtures" / "requests" / "resident-yamada.json")
        with PcscTransport(reader, exclusive=True) as transport:
            issue_resident_card(ApduChannel(transport), station.hsm, station.registry, request,
                                ResidentCardPins(Pin("1234"), Pin("5678"), Pin("BENCH1234")))
        figures = []

        ours_apdu, bare_apdu = select_figures(reader, args.n, figures)
        ours_verify, bare_verify = verify_figures(station, args.n, figures)

        verifier = Verifier.for_station(station.registry, station.hsm, station.home.settings())
        with PcscTransport(reader, exclusive=True) as transport:
            channel = ApduChannel(transport)
            full = rate(lambda: verifier.verify(channel, ("pin", Pin("1234"))),
                        max(20, args.n // 50))
        figures.append(("full verification in-process (8 checks)", full, "cards/s"))

        flows = station_flows(station)
        flow_rows = [flow_figures(reader, name, flow, max(10, args.n // 100))
                     for name, flow in flows.items()]

        walls = []
        for _ in range(5):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "tools", "--home", str(home), "verify"],
                           check=True, capture_output=True, cwd=ROOT, input=b"1234\n")
            walls.append(time.perf_counter() - start)

        print(f"{'measure':48} {'rate':>12}")
        for name, value, unit in figures:
            print(f"{name:48} {value:>10.0f} {unit}")
        print(f"ratio SELECT ours/floor: {ours_apdu / bare_apdu:.2f}")
        print(f"ratio verify ours/floor: {ours_verify / bare_verify:.2f}")
        print(f"{'flow':44} {'APDUs':>6} {'time / bare replay':>20}")
        for name, count, ratio in flow_rows:
            print(f"{name:44} {count:>6} {ratio:>19.2f}x")
        print(f"`juki verify` wall time: median {statistics.median(walls) * 1000:.0f} ms "
              f"(min {min(walls) * 1000:.0f}, max {max(walls) * 1000:.0f}, 5 runs)")


def station_flows(station: Station) -> dict[str, object]:
    from cardlib.apps.card_info import CardInfoApSession, CardInfoKey
    from cardlib.apps.resident_registry import open_registry
    from hsm.diversify import KeySet, card_keys
    from tools.resident.card_info import Credential, What, read_card_info
    from tools.resident.record_code import card_serial
    from tools.station.card_keys import token_prfs
    from tools.station.trust import TrustStore

    anchors = TrustStore.from_settings(station.home.settings(), station.hsm).anchors()
    verifier = Verifier.for_station(station.registry, station.hsm, station.home.settings())

    def verify(channel: ApduChannel) -> None:
        verifier.verify(channel, ("pin", Pin("1234")))

    def card_read(channel: ApduChannel) -> None:
        read_card_info(CardInfoApSession(channel), Credential(CardInfoKey.PIN, Pin("1234")),
                       What.ALL, anchors)

    def scp03_code(channel: ApduChannel) -> None:
        serial = card_serial(channel)
        with card_keys(station.hsm, serial, KeySet.RESIDENT_REGISTRY) as keys:
            open_registry(channel, token_prfs(keys)).read_code()

    return {"card read --what all (PIN + integrity)": card_read,
            "SCP03 open + protected read of the code": scp03_code,
            "verify (8 checks)": verify}


if __name__ == "__main__":
    main()
