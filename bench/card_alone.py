"""Card-alone verification (issue 12 §4) against its floor, measured in the same run.

    flock /tmp/juki-rig.lock nice -n 19 .venv/bin/python bench/card_alone.py [--n 50]

Brings up a rig of its own (one pcscd per machine: run under the rig lock), issues one
card, then times `Verifier.verify(..., offline=True)` through pcscd (EF 0004 chain,
VERIFY, EF 0007, 80 2A 00 00 over a token challenge) against the floor: a bare pyscard
replay of exactly the APDUs one verification sends, plus the bare RSA verifications it
needs (`cryptography`: EF 0004 under the anchor, DF52 under the EF 0004 key, the
presence signature under DF51). The online verification (our registry checks added) is
shown beside it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed  # noqa: E402
from smartcard.System import readers  # noqa: E402

from bench.common import bench_station  # noqa: E402
from bench.run import Recorder, rate  # noqa: E402
from cardlib.card_info_records import decode_signed_key  # noqa: E402
from cardlib.channel import ApduChannel  # noqa: E402
from cardlib.cv_certificate import decode_cv_certificate  # noqa: E402
from cardlib.pcsc import PcscTransport  # noqa: E402
from hsm.cv_hierarchy import ensure_cv_hierarchy  # noqa: E402
from tools.issuance.request import load_request  # noqa: E402
from tools.issuance.resident_card import issue_resident_card  # noqa: E402
from tools.resident.verifier import Verifier  # noqa: E402
from tools.rig.rig import reader_name  # noqa: E402
from tools.station.pins import Pin, ResidentCardPins  # noqa: E402

PIN = "1234"


def _rsa_floor(apdus: list[bytes], answers: list[bytes], anchors: dict, n: int) -> float:  # type: ignore[type-arg]
    """Checks/s of the three bare RSA verifications one verification needs, with the
    objects taken from the recorded answers (parsing is ours, not part of the floor)."""
    reads = [a for a in answers if a[:2] in (b"\x7f\x21", b"\xff\x50")]
    certificate = decode_cv_certificate(next(a for a in reads if a[:2] == b"\x7f\x21"))
    signed = decode_signed_key(next(a for a in reads if a[:2] == b"\xff\x50"))
    anchor, holder, card = anchors[certificate.issuer.raw], certificate.public_key, \
        signed.public_key
    sign_apdu = next(a for a in apdus if a[:4] == bytes.fromhex("802A0000"))
    digest = sign_apdu[5 + 19:5 + 19 + 32]
    signature = next(a for a in answers if len(a) == 256 and a[:2] not in (b"\x7f\x21",))
    body, df51, df52 = certificate.body, signed.signed_part(), signed.signature
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()

    def checks() -> None:
        anchor.verify(certificate.signature, body, pkcs1, sha256)
        holder.verify(df52, df51, pkcs1, sha256)
        card.verify(signature, digest, pkcs1, Prehashed(sha256))

    return rate(checks, n)


class AnswerRecorder(Recorder):
    def __init__(self, inner: PcscTransport) -> None:
        super().__init__(inner)
        self.answers: list[bytes] = []

    def send_and_receive(self, apdu: bytes):  # type: ignore[no-untyped-def]
        data, sw = super().send_and_receive(apdu)
        self.answers.append(bytes(data))
        return data, sw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50)
    args = parser.parse_args()
    with bench_station(1, "juki-bench-card-alone-") as (station, _rig, _home):
        ensure_cv_hierarchy(station.hsm)
        reader = reader_name(0)
        request = load_request(ROOT / "fixtures" / "requests" / "resident-yamada.json")
        with PcscTransport(reader, exclusive=True) as transport:
            issue_resident_card(ApduChannel(transport), station.hsm, station.registry, request,
                                ResidentCardPins(Pin(PIN), Pin("5678"), Pin("BENCH1234")))
        verifier = Verifier.for_station(station.registry, station.hsm, station.home.settings())
        credential = ("pin", Pin(PIN))
        with PcscTransport(reader, exclusive=True) as transport:
            recorder = AnswerRecorder(transport)
            assert verifier.verify(ApduChannel(recorder), credential, offline=True).genuine
            channel = ApduChannel(transport)
            offline = rate(lambda: verifier.verify(channel, credential, offline=True), args.n)
            online = rate(lambda: verifier.verify(channel, credential), args.n)
        # the answers of multi-part reads arrive in chunks: join each file's reads
        joined = _joined_reads(recorder.sent, recorder.answers)
        rsa_rate = _rsa_floor(recorder.sent, joined, verifier.trust.anchors(), args.n * 4)
        apdus = [list(a) for a in recorder.sent]
        connection = next(r for r in readers() if str(r) == reader).createConnection()
        connection.connect()

        def replay() -> None:
            for apdu in apdus:
                connection.transmit(apdu)

        replay_rate = rate(replay, args.n)
        connection.disconnect()
        connection.release()
    floor = 1 / (1 / replay_rate + 1 / rsa_rate)
    print(f"{'measure':58} {'per verification':>18}")
    rows = [("card-alone verify (--offline), cardlib through pcscd", offline),
            ("  floor: bare pyscard replay of its APDUs", replay_rate),
            ("  floor: the 3 bare RSA verifications (cryptography)", rsa_rate),
            ("  floor: replay + RSA", floor),
            ("full verify (registry checks added), for comparison", online)]
    for name, value in rows:
        print(f"{name:58} {1000 / value:>15.2f} ms")
    print(f"APDUs per card-alone verification: {len(apdus)}")
    print(f"ratio card-alone verify / floor: {floor / offline:.2f}x the floor's time")


def _joined_reads(sent: list[bytes], answers: list[bytes]) -> list[bytes]:
    """Each READ BINARY run (consecutive B0 commands) joined into one answer."""
    joined: list[bytes] = []
    run = b""
    for apdu, answer in zip(sent, answers, strict=True):
        if apdu[1] == 0xB0:
            run += answer
            continue
        if run:
            joined.append(run)
            run = b""
        joined.append(answer)
    if run:
        joined.append(run)
    return joined


if __name__ == "__main__":
    main()
