"""Fuzz targets: secure messaging on both sides (SCP03 wrapping and unwrapping, the card
side's INITIALIZE UPDATE / EXTERNAL AUTHENTICATE) and the host's application sessions
fed whatever a hostile card answers."""

from __future__ import annotations

import functools

from cardlib.apdu import CommandApdu
from cardlib.errors import CardDataError, CardError, SecureMessagingError
from cardlib.scp03.card import CardSecureChannel
from cardlib.scp03.keys import SessionKeys, StaticKeyPrfs
from cardlib.scp03.wrapping import VALID_LEVELS, SecureSession, SecurityLevel

from .reader import Reader
from .registry import check, refusals, target

KEYS = SessionKeys(enc=b"\x11" * 16, mac=b"\x22" * 16, rmac=b"\x33" * 16)
STATIC = StaticKeyPrfs.from_software_keys(b"\x44" * 16, b"\x55" * 16)


def _pair(level: int) -> tuple[SecureSession, SecureSession]:
    return SecureSession(KEYS, SecurityLevel(level)), SecureSession(KEYS, SecurityLevel(level))


def _command(reader: Reader) -> CommandApdu | None:
    cla = reader.pick((0x00, 0x80, 0x10, 0x90))
    ins, p1, p2 = reader.byte(), reader.byte(), reader.byte()
    ne = reader.pick((None, 1, 256, 65536, reader.integer(2) or 1))
    with refusals(ValueError):
        return CommandApdu(cla, ins, p1, p2, reader.sized(600), ne)
    return None


def _tamper(reader: Reader, wire: bytes) -> bytes:
    """Flip one byte, cut the end or append bytes (a man in the middle)."""
    how = reader.byte() % 3
    if how == 0 and wire:
        at = reader.integer(2) % len(wire)
        return wire[:at] + bytes((wire[at] ^ (reader.byte() or 1),)) + wire[at + 1 :]
    if how == 1 and wire:
        return wire[: reader.integer(2) % len(wire)]
    return wire + reader.sized(40)


@target("scp03_session", lambda: [bytes((0, 0x33)) + bytes(40), bytes((1, 0x13)) + bytes(64)])
def scp03_session(data: bytes) -> None:
    """Host wraps, card unwraps (and back): an untouched message comes through equal;
    a tampered one is refused (None / SecureMessagingError), never accepted changed."""
    reader = Reader(data)
    host, card = _pair(reader.pick(sorted(VALID_LEVELS)))
    while reader.remaining and host.open and card.open:
        tampered = reader.chance(4)
        if reader.byte() & 1:
            apdu = _command(reader)
            if apdu is None:
                continue
            wire = host.wrap_command(apdu)
            sent = wire
            if tampered:
                with refusals(CardDataError):
                    sent = CommandApdu.decode(_tamper(reader, wire.encode()))
            plain = card.unwrap_command(sent)
            if sent == wire:
                check(plain is not None and plain.data == apdu.data and plain.ins == apdu.ins,
                      "an untouched command failed to unwrap or changed")
            elif plain is not None:
                check(plain.data == apdu.data and (plain.ins, plain.p1, plain.p2) ==
                      (apdu.ins, apdu.p1, apdu.p2), "a tampered command was accepted changed")
            if plain is None:
                return
        else:
            body, sw = reader.sized(300), reader.pick((0x9000, 0x6300, 0x6A82, reader.integer(2)))
            wire = card.wrap_response(body, sw)
            received = _tamper(reader, wire) if tampered else wire
            if len(received) < 2:
                return
            try:
                got = host.unwrap_response(received[:-2], int.from_bytes(received[-2:], "big"))
            except SecureMessagingError:
                check(received != wire, "an untouched response failed its check")
                return
            _check_response(host, got, (body, sw), received == wire)


def _check_response(host: SecureSession, got: tuple[bytes, int], sent: tuple[bytes, int],
                    untouched: bool) -> None:
    """What the host accepts is what the card sent, unless R-MAC is off or what arrived is
    a bare error status (errors carry no R-MAC, by design)."""
    if untouched:
        check(got == sent, "an untouched response changed on its way")
    elif SecurityLevel.R_MAC in host.level and got != sent:
        data, sw = got
        check(not data and not (sw == 0x9000 or sw >> 8 in (0x62, 0x63)),
              "a tampered response with data or a success status passed the R-MAC check")


@target("scp03_card_channel", lambda: [bytes(8) + bytes((0x33,)) + bytes(16)])
def scp03_card_channel(data: bytes) -> None:
    """The card side of SCP03 opening: any INITIALIZE UPDATE / EXTERNAL AUTHENTICATE
    sequence is refused by status word or accepted only with the right cryptogram."""
    from cardlib.status import CardStatus

    reader = Reader(data)
    channel = CardSecureChannel(STATIC, 0x30, bytes(10), challenge_source=lambda: (bytes(8), None))
    while reader.remaining:
        apdu = _command(reader)
        if apdu is None:
            continue
        if reader.byte() & 1:
            with refusals(CardStatus):
                channel.initialize_update(apdu)
        else:
            accepted = channel.external_authenticate(apdu)
            check(not accepted, "EXTERNAL AUTHENTICATE with a fuzzed cryptogram was accepted")
        if reader.chance(8):
            channel.note_other_command()


def _issue12_operations() -> dict[str, object]:
    """The host reads of issue 12 (physical files, records, SFI, credentials, the
    card-info AP's secure messaging, the surface AP)."""
    from cardlib.apps.card_info import CardInfoApSession, CardInfoKey
    from cardlib.apps.common import CommonApSession
    from cardlib.apps.surface import SurfaceApSession
    from cardlib.constants import SurfaceFile

    def card_info_over_sm(ch: object) -> object:
        return CardInfoApSession(ch).open_secure_messaging().read_four_info()  # type: ignore[arg-type]

    return {
        "read_physical": lambda ch: CardInfoApSession(ch).read_physical(0x0001),
        "read_record": lambda ch: CommonApSession(ch).read_record(1),
        "read_binary_sfi": lambda ch: CardInfoApSession(ch).read_binary_sfi(1, 0, 17),
        "card_info_present_b": lambda ch: CardInfoApSession(ch).present(
            CardInfoKey.COLLATION_B, "02020320351234"),
        "card_info_key_status": lambda ch: CardInfoApSession(ch).key_status(CardInfoKey.COLLATION_A),
        "card_info_session_key": lambda ch: CardInfoApSession(ch).read_session_key(),
        "card_info_over_sm": card_info_over_sm,
        "surface_present_a": lambda ch: SurfaceApSession(ch).present(
            SurfaceFile.COLLATION_A, "987654321093"),
        "surface_face": lambda ch: SurfaceApSession(ch).read_file(SurfaceFile.FACE),
        "surface_presence": lambda ch: SurfaceApSession(ch).presence_signature(bytes(32)),
    }


@functools.cache
def _scripted_operations() -> dict[str, object]:
    from tests.unit.test_host_parsers_fuzz import OPERATIONS

    return {**OPERATIONS, **_issue12_operations()}


@target("host_sessions", lambda: [bytes(4) + b"\x02\x90\x00"])
def host_sessions(data: bytes) -> None:
    """Every host session operation against a card whose answers are the fuzz input:
    a result or a ``CardError``, nothing else."""
    from cardlib.channel import ApduChannel
    from tests.helpers import ScriptedTransport

    reader = Reader(data)
    operations = _scripted_operations()
    operation = operations[sorted(operations)[reader.byte() % len(operations)]]

    def answer(_apdu: bytes) -> tuple[bytes, int]:
        return reader.sized(400), reader.pick((0x9000, 0x6100 | reader.byte(), 0x6C00 | reader.byte(),
                                                0x63C0 | reader.byte() % 16, reader.integer(2)))

    channel = ApduChannel(ScriptedTransport(answer), max_get_response_rounds=8)
    with refusals(CardError):
        operation(channel)  # type: ignore[operator]
