"""Fuzz targets: the emulated cards' command interpreters. An input is a sequence of
commands built from a table of valid CLA/INS/P1/P2/data values (a fraction fully random,
some raw bytes, power cycles and warm resets), sent to a card personalised once in
process. Invariants: every answer is >= 2 bytes ending in a valid status word; the card OS
never raises and never logs an error (a caught exception is a card OS bug turned into
6F00); and without a VERIFY answered 9000 in the same input, no answer carries any part
of a PIN-protected file (individual number, 4 information, the JPKI signing certificate)
or a PIV signature with the 9A key."""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import functools
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from cardlib.apdu import CommandApdu
from cardlib.card_info_records import encode_session_key_file
from cardlib.constants import (
    PIV_DEFAULT_PIN,
    PIV_DEFAULT_PUK,
    Aid,
    CardInfoFile,
    CommonFile,
    Ins,
    JpkiFile,
    PivIns,
    PivKeyRef,
    PivObject,
    SurfaceFile,
)
from cardlib.errors import CardDataError, CardError
from cardlib.records import FourInfo, encode_four_info, encode_individual_number

from .reader import Reader
from .registry import ContractViolation, check, target

NUMBER = "987654321093"  # 12 digits, valid check digit; appears nowhere free on the card
NAME = "鈴木　ファズ子"
CARD_INFO_PIN, JPKI_AUTH_PIN, JPKI_SIGN_PIN = "2468", "1357", "FUZZSIGN1"
COLLATION_B, BIRTH_DATE_KEY = "02020320351234", "020203"
SIGN_CERT_MARK = bytes.fromhex("30820010") + b"PROTECTED-SIGN-CERT-MARK"
SHARED_MARKS = {CardInfoFile.INTEGRITY: b"FF30-INTEGRITY-MARK",  # PIN, A or B open these
                CardInfoFile.SIGNED_KEY: b"FF50-SIGNED-KEY-MARK"}
SURFACE_MARKS = {SurfaceFile.AGE_RECORD: b"FF10-AGE-RECORD-MARK", SurfaceFile.FACE: b"FF20-FACE-MARK-PHOTO",
                 SurfaceFile.RENDERED_NUMBER: b"FF40-RENDERED-NUMBER-MARK"}
MAX_COMMANDS = 24
WINDOW = 6

AIDS = [aid.value for aid in Aid] + [Aid.PIV.value[:5], b"\xd3\x92", b""]
FIDS = [bytes.fromhex(f"{fid:04X}") for fid in (
    *CardInfoFile, *JpkiFile, *CommonFile, 0x0002, 0x0003, 0x0004, 0x0005, 0x0006, 0x3F00)]
SECRETS = [s.encode() for s in (CARD_INFO_PIN, JPKI_AUTH_PIN, JPKI_SIGN_PIN, NUMBER, COLLATION_B,
                                BIRTH_DATE_KEY, PIV_DEFAULT_PIN, PIV_DEFAULT_PUK)]
# Ins holds ERASE BINARY (0E) and RESET RETRY COUNTER (2C) of the counter session.
INS_TABLE = [int(i) for i in Ins] + [int(i) for i in PivIns] + [0x44, 0xE2]
CLA_TABLE = [0x00] * 6 + [0x80] * 3 + [0x04, 0x84, 0x08, 0x0C, 0x01, 0x03, 0x10, 0x40, 0x90]
P1_TABLE = [0x00] * 4 + [0x04, 0x02, 0x01, 0x80, 0x81, 0x85, 0x86, 0x8A, 0xFF, 0x07, 0x3F]
P2_TABLE = [0x00] * 4 + [0x0C, 0x80, 0x81, 0x99, 0x97, 0x9A, 0x9B, 0x9E, 0x04, 0x14, 0x70,
                         0x45, 0xF0, 0x7F, 0xFF]


def _data(reader: Reader) -> bytes:
    kind = reader.byte() % 8
    if kind == 0:
        return b""
    if kind == 1:
        return reader.pick(AIDS)
    if kind == 2:
        return reader.pick(FIDS)
    if kind == 3:
        return reader.pick(SECRETS)
    if kind == 4:
        return bytes.fromhex("5C03") + reader.pick([b"\x5f\xc1\x02", b"\x5f\xc1\x05", b"\x7e\x00\x00"])
    if kind == 5:
        return bytes.fromhex("7C0482008100")[: 2 + reader.byte() % 5] + reader.sized(300)
    return reader.sized(600)


def next_command(reader: Reader) -> bytes | str:
    """Raw C-APDU bytes, or 'power' / 'reset' for a power cycle / warm reset."""
    mode = reader.byte()
    if mode >= 250:
        return "power" if mode & 1 else "reset"
    if mode >= 220:
        return reader.sized(300)
    full_random = mode >= 200
    pick = (lambda table: reader.byte()) if full_random else reader.pick
    cla, ins, p1, p2 = pick(CLA_TABLE), pick(INS_TABLE), pick(P1_TABLE), pick(P2_TABLE)
    data = _data(reader)
    ne = reader.pick((None, None, 256, 1, 17, 65536, reader.integer(2) or 1))
    try:
        return CommandApdu(cla, ins, p1, p2, data, ne).encode()
    except ValueError:
        return bytes((cla, ins, p1, p2)) + data


def decoded_commands(reader: Reader) -> Iterator[CommandApdu]:
    """The input's commands (``next_command``, at most ``MAX_COMMANDS``) that decode as a
    C-APDU; power cycles, resets and undecodable bytes are passed over."""
    for _ in range(MAX_COMMANDS):
        if not reader.remaining:
            return
        command = next_command(reader)
        if not isinstance(command, bytes):
            continue
        try:
            apdu = CommandApdu.decode(command)
        except CardDataError:
            continue
        yield apdu


def _valid_sw1(sw1: int) -> bool:
    return 0x61 <= sw1 <= 0x6F or 0x90 <= sw1 <= 0x9F


class _ErrorLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def no_card_os_errors() -> Iterator[None]:
    """Any ERROR the emulator logs (its catch-all turning an exception into 6F00) fails."""
    handler = _ErrorLog()
    logger = logging.getLogger("cardlib.emulator")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
    if handler.records:
        record = handler.records[0]
        detail = logging.Formatter().formatException(record.exc_info) if record.exc_info else ""
        raise ContractViolation(f"card OS error: {record.getMessage()}\n{detail}")


def _windows(*secrets: bytes) -> frozenset[bytes]:
    return frozenset(s[i : i + WINDOW] for s in secrets for i in range(len(s) - WINDOW + 1))


def _revealed(answer: bytes, windows: frozenset[bytes]) -> frozenset[bytes]:
    body = answer[:-2]
    return frozenset(body[i : i + WINDOW] for i in range(len(body) - WINDOW + 1)) & windows


def _presented(command: bytes, answer: bytes) -> bytes | None:
    """The secret of a VERIFY the card accepted (9000), if it was one."""
    if len(command) < 5 or command[1] != Ins.VERIFY or answer[-2:] != b"\x90\x00":
        return None
    try:
        return CommandApdu.decode(command).data
    except CardDataError:
        return None


ANY_SECRET = b""  # stands for "any secret the card accepted"


def _no_signature(_command: bytes, _answer: bytes) -> frozenset[bytes]:
    return frozenset()


@dataclass(frozen=True)
class Protected:
    """What no answer may carry (6-byte windows of it), what each secret opens, and
    for a signature answered, the secrets one of which must have been accepted before."""

    windows: frozenset[bytes] = frozenset()
    opens: dict[bytes, frozenset[bytes]] = field(default_factory=dict)
    signing: Callable[[bytes, bytes], frozenset[bytes]] = _no_signature


def _send(card: object, command: bytes | str) -> bytes | None:
    if command == "power":
        card.power_off()  # type: ignore[attr-defined]
        card.power_on()  # type: ignore[attr-defined]
    elif command == "reset":
        card.reset()  # type: ignore[attr-defined]
    else:
        answer = card.process_apdu(command)  # type: ignore[attr-defined]
        check(isinstance(answer, bytes) and len(answer) >= 2 and _valid_sw1(answer[-2]),
              f"answer {answer!r} to {bytes(command).hex()} does not end in a status word")
        return answer
    return None


def drive(card: object, data: bytes, protected: Protected) -> None:
    """The input's commands (``next_command``) through ``run_commands``."""
    reader = Reader(data)

    def commands() -> Iterator[bytes | str]:
        for _ in range(MAX_COMMANDS):
            if not reader.remaining:
                return
            yield next_command(reader)

    run_commands(card, commands(), protected)


def run_commands(card: object, commands: Iterable[bytes | str], protected: Protected) -> None:
    """Send the commands; check the answer invariants after each. A secret presented and
    accepted opens only what ``protected.opens`` says it opens (a 照合番号A never the 4
    information, B never the individual number, as on the real card); a signature by a
    PIN-protected key needs that PIN accepted before."""
    presented, opened = set[bytes](), frozenset[bytes]()
    with no_card_os_errors():
        card.power_on()  # type: ignore[attr-defined]
        for command in commands:
            answer = _send(card, command)
            if answer is None or not isinstance(command, bytes):
                continue
            secret = _presented(command, answer)
            if secret is not None:
                presented |= {secret, ANY_SECRET}
                opened |= protected.opens.get(secret, frozenset())
            leaked = _revealed(answer, protected.windows) - opened
            check(not leaked, f"protected content {sorted(leaked)[:2]} answered to {command.hex()} "
                              f"without the VERIFY that opens it")
            required = protected.signing(command, answer)
            check(not required or required & presented,
                  f"a PIN-protected key signed without its VERIFY: {command.hex()}")


# ---- the resident card, personalised in process ---------------------------------------

def _personalise_step(step: Callable[[], object]) -> None:
    """One personalisation step; a file or key the profile of the day lacks is skipped."""
    with contextlib.suppress(CardError):
        step()


@functools.cache
def personalised_resident_state() -> object:
    from cardlib.apps.base import WritableApSession
    from cardlib.apps.issuer import IssuerSession
    from tests.helpers import card_channel, personalising

    card, channel = card_channel()
    channel = personalising(channel)
    common = WritableApSession(channel, Aid.COMMON)
    info = WritableApSession(channel, Aid.CARD_INFO)
    jpki = WritableApSession(channel, Aid.JPKI)
    surface = WritableApSession(channel, Aid.CARD_SURFACE)
    four_info = FourInfo(NAME, "大阪府大阪市北区梅田一丁目", dt.date(1990, 2, 3), "2")
    for step in (
        common.select, lambda: common.generate_rsa_key(CommonFile.AUTH_KEY),
        info.select, lambda: info.write_file(CardInfoFile.ATTRIBUTES, encode_four_info(four_info)),
        lambda: info.write_file(CardInfoFile.INDIVIDUAL_NUMBER, encode_individual_number(NUMBER)),
        lambda: info.set_pin(CardInfoFile.PIN, CARD_INFO_PIN),
        lambda: info.set_pin(CardInfoFile.COLLATION_A, NUMBER),
        lambda: info.set_pin(CardInfoFile.COLLATION_B, COLLATION_B),
        *(functools.partial(info.write_file, fid, mark) for fid, mark in SHARED_MARKS.items()),
        lambda: info.write_file(CardInfoFile.SESSION_KEY, encode_session_key_file(
            info.generate_rsa_key(CardInfoFile.SESSION_KEY))),
        surface.select, *(functools.partial(surface.write_file, fid, mark)
                          for fid, mark in SURFACE_MARKS.items()),
        lambda: surface.set_pin(SurfaceFile.BIRTH_DATE_KEY, BIRTH_DATE_KEY),
        lambda: surface.set_pin(SurfaceFile.COLLATION_A, NUMBER),
        lambda: surface.set_pin(SurfaceFile.COLLATION_B, COLLATION_B),
        jpki.select, lambda: jpki.generate_rsa_key(JpkiFile.AUTH_KEY),
        lambda: jpki.generate_rsa_key(JpkiFile.SIGN_KEY),
        lambda: jpki.write_file(JpkiFile.SIGN_CERT, SIGN_CERT_MARK),
        lambda: jpki.set_pin(JpkiFile.AUTH_PIN, JPKI_AUTH_PIN),
        lambda: jpki.set_pin(JpkiFile.SIGN_PIN, JPKI_SIGN_PIN),
    ):
        _personalise_step(step)
    issuer = IssuerSession(channel)
    issuer.select()
    issuer.lock()
    return card.state


def _jpki_signature(command: bytes, answer: bytes) -> frozenset[bytes]:
    """RC §7.5: 80 2A P1 80/97/9A answered with data needs the PIN of that key (80: the
    selected key, either)."""
    if len(command) < 4 or command[:2] != b"\x80\x2a" or len(answer) <= 2 or answer[-2] not in (0x90, 0x61):
        return frozenset()
    auth, sign = JPKI_AUTH_PIN.encode(), JPKI_SIGN_PIN.encode()
    return {0x97: frozenset((auth,)), 0x9A: frozenset((sign,)), 0x80: frozenset((auth, sign))}.get(
        command[3], frozenset())


def _resident_protected() -> Protected:
    """RC §4.1, §5.1, §7.1: the PIN opens the number and the 4 information; A the number,
    the face and the rendered number; B the 4 information and the face; the birth-date
    key the age record; the JPKI signing password the signing certificate; the PIN, A or
    B the card-info EF 0003 and 0007."""
    number, name = _windows(NUMBER.encode()), _windows(NAME.encode())
    age, face, rendered = (_windows(SURFACE_MARKS[f]) for f in (
        SurfaceFile.AGE_RECORD, SurfaceFile.FACE, SurfaceFile.RENDERED_NUMBER))
    sign_cert = _windows(SIGN_CERT_MARK)
    shared = _windows(*SHARED_MARKS.values())
    return Protected(
        windows=number | name | age | face | rendered | sign_cert | shared,
        opens={CARD_INFO_PIN.encode(): number | name | shared,
               NUMBER.encode(): number | face | rendered | shared,
               COLLATION_B.encode(): name | face | shared, BIRTH_DATE_KEY.encode(): age,
               JPKI_SIGN_PIN.encode(): sign_cert},
        signing=_jpki_signature)


RESIDENT_PROTECTED = _resident_protected()
_KEY_CACHE: dict[str, object] = {}


def _resident_card(state: object) -> object:
    from cardlib.emulator.resident_card_os import ResidentCardOs

    card = ResidentCardOs(copy.deepcopy(state))  # type: ignore[arg-type]
    card._loaded_keys = _KEY_CACHE  # type: ignore[assignment]  # parse each PEM once per run
    return card


def _resident_seeds() -> list[bytes]:
    select_info = bytes((0, 0)) + bytes((Ins.SELECT,)) + bytes((0, 0))
    return [select_info + bytes(40), bytes(range(64)), bytes([7] * 48)]


@target("emulator_resident_card", _resident_seeds)
def emulator_resident_card(data: bytes) -> None:
    drive(_resident_card(personalised_resident_state()), data, RESIDENT_PROTECTED)


@target("emulator_blank_card", lambda: [bytes(32), bytes(range(64))])
def emulator_blank_card(data: bytes) -> None:
    from cardlib.emulator.profiles import blank_resident_card
    from tests.helpers import TRANSPORT_KEYS

    drive(_resident_card(_blank_state(tuple(TRANSPORT_KEYS.items()), blank_resident_card)),
          data, Protected())


@functools.cache
def _blank_state(keys: tuple[tuple[str, bytes], ...], make: Callable[..., object]) -> object:
    return make(serial="000000000000001", transport_keys=dict(keys))


# ---- the PIV operator card --------------------------------------------------------

PIV_MANAGEMENT_KEY = bytes(range(16))


@functools.cache
def personalised_piv_state() -> object:
    from cardlib.apps.piv import PivSession
    from cardlib.channel import ApduChannel
    from cardlib.constants import PivAlgorithm
    from cardlib.emulator.piv_card import PivCard
    from cardlib.emulator.profiles import blank_operator_card
    from cardlib.transport import InProcessTransport
    from tests.helpers import SoftwareCipher

    card = PivCard(blank_operator_card("123456789012345", bytes(range(16)), PIV_MANAGEMENT_KEY))
    session = PivSession(ApduChannel(InProcessTransport(card)))
    session.select()
    session.authenticate_management(SoftwareCipher(PIV_MANAGEMENT_KEY))
    session.generate_key(PivKeyRef.AUTHENTICATION, PivAlgorithm.ECC_P256)
    session.generate_key(PivKeyRef.CARD_AUTHENTICATION, PivAlgorithm.ECC_P256)
    return card.state


def _piv_signs_9a(command: bytes, answer: bytes) -> frozenset[bytes]:
    """GENERAL AUTHENTICATE with the 9A key (after the PIN, whatever its value now)."""
    if (len(command) >= 4 and command[1] == PivIns.GENERAL_AUTHENTICATE
            and command[3] == PivKeyRef.AUTHENTICATION and len(answer) > 2
            and answer[-2] in (0x90, 0x61)):
        return frozenset((ANY_SECRET,))
    return frozenset()


def _piv_seeds() -> list[bytes]:
    select = CommandApdu(0, Ins.SELECT, 4, 0, Aid.PIV.value).encode()
    chuid = CommandApdu(0, PivIns.GET_DATA, 0x3F, 0xFF, bytes.fromhex("5C035FC102")).encode()
    return [bytes((0, 0)) + select[:1] + bytes(8), bytes(range(80)), select + chuid,
            bytes((PivObject.CHUID & 0xFF,)) * 40]


@target("emulator_piv_card", _piv_seeds)
def emulator_piv_card(data: bytes) -> None:
    from cardlib.emulator.piv_card import PivCard

    card = PivCard(copy.deepcopy(personalised_piv_state()))  # type: ignore[arg-type]
    drive(card, data, Protected(signing=_piv_signs_9a))
