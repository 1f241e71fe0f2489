"""Test helpers: scripted cards and transports for fault injection."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import itertools
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.x509.oid import NameOID

from cardlib.apdu import split_response
from cardlib.apps.card_info import CardInfoApSession
from cardlib.channel import ApduChannel
from cardlib.emulator.profiles import blank_resident_card
from cardlib.emulator.resident_card_os import ResidentCardOs
from cardlib.errors import CardRemovedError, InvalidPinError, PinBlockedError
from cardlib.records import FourInfo
from cardlib.transport import InProcessTransport
from tools.pki.issued import IssuedCertificate
from tools.registry.events import Event


class ScriptedTransport:
    """Answers each APDU from a function; records what was sent."""

    def __init__(self, answer: Callable[[bytes], tuple[bytes, int]]) -> None:
        self.answer = answer
        self.sent: list[bytes] = []

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]:
        self.sent.append(apdu)
        return self.answer(apdu)

    def close(self) -> None:
        pass


class FaultyTransport:
    """Wraps a transport; at APDU number ``fail_at`` (0-based) removes the card or
    garbles the response."""

    def __init__(self, inner, fail_at: int, mode: str = "remove") -> None:  # type: ignore[no-untyped-def]
        self.inner = inner
        self.fail_at = fail_at
        self.mode = mode
        self.count = 0

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]:
        index = self.count
        self.count += 1
        if index >= self.fail_at and self.mode == "remove":
            raise CardRemovedError("card removed (injected)")
        data, sw = self.inner.send_and_receive(apdu)
        if index == self.fail_at and self.mode == "garble":
            return bytes(b ^ 0x5A for b in data), sw ^ 0x0100
        return data, sw

    def close(self) -> None:
        self.inner.close()


def exhaust_card_info_pin(session: CardInfoApSession, right_pin: str) -> None:
    """Three wrong PINs: tries go 3 -> 2 -> 1 -> blocked; then even the right PIN fails
    and the status query (which spends nothing) reports the block."""
    assert session.pin_status().tries_left == 3
    for expected in (2, 1):
        with pytest.raises(InvalidPinError) as info:
            session.verify_pin("0000")
        assert info.value.tries_left == expected
    with pytest.raises(PinBlockedError):
        session.verify_pin("0000")
    with pytest.raises(PinBlockedError):
        session.verify_pin(right_pin)
    status = session.pin_status()
    assert status.blocked and status.tries_left == 0


TRANSPORT_KEYS = {"enc": b"\x11" * 16, "mac": b"\x22" * 16, "dek": b"\x33" * 16}


def card_channel(card: ResidentCardOs | None = None) -> tuple[ResidentCardOs, ApduChannel]:
    """A blank card (born with the test transport keys) in an in-process reader."""
    card = card or ResidentCardOs(blank_resident_card(transport_keys=TRANSPORT_KEYS))
    card.power_on()
    return card, ApduChannel(InProcessTransport(card))


def personalising(channel: ApduChannel, keys: dict[str, bytes] = TRANSPORT_KEYS) -> ApduChannel:
    """The issuer domain's SCP03 level-33 channel through which a blank card is
    personalised (it spans every application until the card is locked)."""
    from cardlib.apps.base import open_secure
    from cardlib.apps.issuer import IssuerSession
    from cardlib.scp03.keys import StaticKeyPrfs

    session = open_secure(channel, IssuerSession,
                          StaticKeyPrfs.from_software_keys(keys["enc"], keys["mac"]))
    return session.channel


def raw(card: ResidentCardOs, hex_apdu: str) -> tuple[bytes, int]:
    return split_response(card.process_apdu(bytes.fromhex(hex_apdu.replace(" ", ""))))


@contextlib.contextmanager
def rsa_key_pool(size: int) -> Iterator[None]:
    """On-card RSA key generation is slow: while inside, the emulated cards' key
    generation hands out ``size`` keys made once, in turn."""
    from cardlib.emulator import key_commands

    pool = itertools.cycle([rsa.generate_private_key(public_exponent=65537, key_size=2048)
                            for _ in range(size)])
    original = key_commands.rsa.generate_private_key
    key_commands.rsa.generate_private_key = lambda **_kw: next(pool)  # type: ignore[assignment]
    try:
        yield
    finally:
        key_commands.rsa.generate_private_key = original  # type: ignore[assignment]


@pytest.fixture(scope="module", autouse=True)
def pooled_card_keys() -> Iterator[None]:
    """Autouse in every test module that imports it: on-card RSA key generation is not
    what those tests are about, so their cards share three keys."""
    with rsa_key_pool(3):
        yield


@functools.cache
def _certificate_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def self_signed_certificate(not_before: dt.datetime, not_after: dt.datetime) -> x509.Certificate:
    """``CN=test``, self-signed (one key per run), valid from ``not_before`` to
    ``not_after``: a certificate for the registry, where who signed it does not matter."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
    key = _certificate_key()
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .sign(key, hashes.SHA256()))


def resident_certificates(card: x509.Certificate, auth: x509.Certificate,
                          sign: x509.Certificate) -> list[IssuedCertificate]:
    """A resident card's three certificates as issuance records them: the card's and the
    JPKI auth one under resident-issuing-ca v1, the JPKI sign one under resident-sign-ca v1."""
    return [IssuedCertificate("card", card, "resident-issuing-ca", 1),
            IssuedCertificate("jpki-auth", auth, "resident-issuing-ca", 1),
            IssuedCertificate("jpki-sign", sign, "resident-sign-ca", 1)]


class KeptEvents:
    """An event sink (``tools.registry.events.EventSink``) that keeps what the registry
    appends: in ``pending`` until its transaction commits, then in ``committed``."""

    def __init__(self) -> None:
        self.pending: list[Event] = []
        self.committed: list[Event] = []

    def append(self, db, event: Event) -> int:  # type: ignore[no-untyped-def]
        self.pending.append(event)
        return len(self.committed) + len(self.pending)

    def before_commit(self, db) -> None:  # type: ignore[no-untyped-def]
        self.committed += self.pending
        self.pending = []

    def discard(self) -> None:
        self.pending = []

    def names(self) -> list[str]:
        return [e.event for e in self.committed]


OWN_TOKEN_PRELUDE = """
import json, sys
from pathlib import Path
from hsm.station_keys import ensure_station_keys
from tools.registry import Registry
from tools.rig.rig import Rig
from tools.station.home import StationHome

home = StationHome(Path(sys.argv[1]))
Rig(home).ensure_token()
hsm = home.open_token()
ensure_station_keys(hsm)
registry = Registry(home.root / "registry.sqlite")
"""


def run_on_own_token(script: str, home: Path, timeout: int = 300) -> dict:
    """Run ``script`` in a Python process of its own (one SoftHSM configuration per
    process) after ``OWN_TOKEN_PRELUDE``: a station ``home`` with a token of its own and
    the station keys (``hsm``), its SQLite ``registry``. The JSON it prints last."""
    from tests.conftest import ROOT

    result = subprocess.run([sys.executable, "-c", OWN_TOKEN_PRELUDE + script, str(home)],
                            capture_output=True, text=True, cwd=ROOT, timeout=timeout, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


# The six published CA keys (RC §6.1): key ID -> the "sha256(modulus) = … [D] copy check"
RC_COPY_CHECKS = {
    "5000020/001 (A8)": "318ab4a79346bbd993d36d31a4d766f02a239f36b10bc323458242130f927a97",
    "5000023/001": "bb96cc1dc6502005661961f0a45ed843d007c69e3ce167eceb6b1abd5333a932",
    "5000033/001": "409655d477547d83cbe182385acb1ea83c9828eb6e5b8bba90957c339b5f30f7",
    "6000020/001 (A8)": "218018727ce0d4955b0b40f468eb131d5e8375ee4a2aa58dabda524b19d29a39",
    "6000023/001": "df70444dbe6841ec03267c25cf1bd35ff30ef8044da34ff5eedd0719e6f14530",
    "6000033/001": "690db1b2d7b9994764a81982bc1e4cd76d9e92d0a33a895b2e71a0be8356f1ae",
}
SAMPLE_INFO = FourInfo("山田　太郎", "東京都千代田区霞が関二丁目1番2号", dt.date(1985, 4, 12), "1")


class SoftwareCipher:
    """A management key in software, for unit tests (the station's lives in the token)."""

    def __init__(self, key: bytes) -> None:
        self._cipher = Cipher(algorithms.AES(key), modes.ECB())

    def encrypt_block(self, block: bytes) -> bytes:
        enc = self._cipher.encryptor()
        return enc.update(block) + enc.finalize()

    def decrypt_block(self, block: bytes) -> bytes:
        dec = self._cipher.decryptor()
        return dec.update(block) + dec.finalize()
