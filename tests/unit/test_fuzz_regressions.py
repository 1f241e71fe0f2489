"""The fuzz targets (tests/fuzz) without atheris: every crash input `make fuzz` saved
under fixtures/fuzz/<target>/ replays without a failure (the bug it found stays fixed),
and every target accepts its seeds and a few hundred random inputs (targets do not rot
between fuzz runs)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes

from tests.fuzz.registry import load_all

ROOT = Path(__file__).resolve().parents[2]
CRASHES = sorted((ROOT / "fixtures" / "fuzz").glob("*/*-*"))
TARGETS = load_all()

# Crash inputs whose bug is in a file another part is editing: reported to its owner,
# kept here as strict xfails (target -> owner and bug) until the fix lands.
KNOWN_OPEN: dict[str, str] = {}


def _replay_params() -> list[object]:
    params = []
    for path in CRASHES:
        key, owner = f"{path.parent.name}/{path.name}", KNOWN_OPEN.get(path.parent.name)
        marks = [pytest.mark.xfail(strict=True, reason=owner)] if owner else []
        params.append(pytest.param(path, id=key, marks=marks))
    return params


@pytest.mark.parametrize("path", _replay_params())
def test_saved_crash_input_no_longer_fails(path: Path) -> None:
    TARGETS[path.parent.name].run(path.read_bytes())


def test_every_crash_input_names_a_target() -> None:
    assert {path.parent.name for path in CRASHES} <= set(TARGETS)


def test_a_deeply_nested_request_file_is_a_request_error_naming_the_file() -> None:
    from tools.errors import RequestError
    from tools.issuance.request import load_request

    for name in ("crash-08c646b9de97", "crash-0efd3688560b", "crash-33ec5238085f",
                 "crash-7d59f86c9b72", "crash-f97432b6546b"):  # the RecursionError inputs
        text = (ROOT / "fixtures" / "fuzz" / "request_file" / name).read_bytes()
        with pytest.raises(RequestError, match="nested too deeply"):
            load_request(Path("request.json"), read=lambda _path, text=text: _request_text(text))
    with pytest.raises(RequestError, match=r"\(file\).*nested too deeply"):
        load_request(Path("r.json"), read=lambda _path: b"[" * 5000 + b"]" * 5000)


def test_a_batch_line_nested_too_deeply_is_rejected_and_the_others_go_on() -> None:
    from tools.issuance.batch import parse_batch

    deep = b"[" * 5000 + b"]" * 5000
    good = b'{"name": "x"}'
    lines = parse_batch(Path("b.jsonl"), read=lambda _path: deep + b"\n" + good)
    assert [(line.line, line.status) for line in lines] == [(1, "rejected"), (2, "rejected")]
    assert lines[0].detail == "malformed JSON: nested too deeply"
    assert "nested" not in lines[1].detail


def _request_text(data: bytes) -> bytes:
    from tests.fuzz.tools_targets import _request_text as build

    return build(data)


def test_a_negative_or_deeply_nested_extra_anchor_is_a_config_error() -> None:
    from tests.fuzz.tools_targets import _anchors_seed
    from tools.errors import StationConfigError
    from tools.station.trust import load_extra

    negative = _anchors_seed().replace(b'modulus = "', b'modulus = "-')
    with pytest.raises(StationConfigError, match="modulus must be an odd 2048-bit number"):
        load_extra(Path("a.toml"), read=lambda _path: negative)
    with pytest.raises(StationConfigError, match="nested too deeply"):
        load_extra(Path("a.toml"), read=lambda _path: b"a = " + b"[" * 3000 + b"]" * 3000)
    assert load_extra(Path("a.toml"), read=lambda _path: _anchors_seed())  # the seed is accepted


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=[pytest.mark.xfail(strict=True, reason=KNOWN_OPEN[name])]
                 if name in KNOWN_OPEN else [])
    for name in sorted(TARGETS)])
def test_target_accepts_its_seeds_and_random_inputs(name: str) -> None:
    target = TARGETS[name]
    generator = random.Random(name)
    for seed in target.seeds():
        target.run(seed)
    for size in range(200):
        target.run(generator.randbytes(size % 150))


# ---- the emulator targets' invariant is not vacuous --------------------------------------

def _apdus(*hex_apdus: str) -> list[bytes]:
    return [bytes.fromhex(h.replace(" ", "")) for h in hex_apdus]


def _read_after(key_fid: str, secret: bytes, ef: str) -> list[bytes]:
    from cardlib.constants import Aid

    return _apdus(f"00 A4 04 0C 0A {Aid.CARD_INFO.hex()}", f"00 A4 02 0C 02 {key_fid}",
                  f"00 20 00 80 {len(secret):02X} {secret.hex()}", f"00 A4 02 0C 02 {ef}",
                  "00 B0 00 00 00")


class _Answering:
    """A card that answers every command with the same bytes (a broken card OS)."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer

    def power_on(self) -> None: ...

    def process_apdu(self, _raw: bytes) -> bytes:
        return self.answer


def test_the_resident_card_reveals_the_4_information_after_b_and_the_invariant_allows_it() -> None:
    from tests.fuzz import card_targets as c

    card = c._resident_card(c.personalised_resident_state())
    answers: list[bytes] = []
    original = card.process_apdu
    card.process_apdu = lambda raw: answers.append(original(raw)) or answers[-1]  # type: ignore[method-assign]
    c.run_commands(card, _read_after("0015", c.COLLATION_B.encode(), "0002"), c.RESIDENT_PROTECTED)
    assert answers[2][-2:] == b"\x90\x00" and c.NAME.encode() in answers[4]


def test_the_invariant_catches_a_card_that_answers_the_number_after_b_or_nothing() -> None:
    from tests.fuzz import card_targets as c
    from tests.fuzz.registry import ContractViolation

    leaking = _Answering(c.NUMBER.encode() + b"\x90\x00")
    with pytest.raises(ContractViolation, match="without the VERIFY"):
        c.run_commands(leaking, _apdus("00 B0 00 00 00"), c.RESIDENT_PROTECTED)
    with pytest.raises(ContractViolation, match="without the VERIFY"):
        c.run_commands(leaking, _read_after("0015", c.COLLATION_B.encode(), "0001"),
                       c.RESIDENT_PROTECTED)
    with pytest.raises(ContractViolation, match="status word"):
        c.run_commands(_Answering(b"\x90"), _apdus("00 B0 00 00 00"), c.RESIDENT_PROTECTED)


def test_b_does_not_open_the_individual_number_on_the_emulated_card() -> None:
    from tests.fuzz import card_targets as c

    card = c._resident_card(c.personalised_resident_state())
    commands = _read_after("0015", c.COLLATION_B.encode(), "0001")
    card.power_on()
    answers = [card.process_apdu(command) for command in commands]
    assert answers[2][-2:] == b"\x90\x00" and answers[4] == b"\x69\x82"


def test_an_exception_inside_the_card_os_fails_the_target_although_the_card_answers_6f00() -> None:
    from tests.fuzz import card_targets as c
    from tests.fuzz.registry import ContractViolation

    card = c._resident_card(c.personalised_resident_state())

    def broken(_apdu: object) -> bytes:
        raise ZeroDivisionError("a card OS bug")

    card._handlers = dict.fromkeys(card._handlers, broken)
    card.power_on()
    assert card.process_apdu(bytes.fromhex("0084000008"))[-2:] == b"\x6f\x00"
    with pytest.raises(ContractViolation, match=r"(?s)card OS error.*ZeroDivisionError"):
        c.run_commands(card, _apdus("0084000008"), c.RESIDENT_PROTECTED)


def test_a_opens_the_integrity_record_but_not_the_4_information_on_the_emulated_card() -> None:
    from cardlib.constants import CardInfoFile
    from tests.fuzz import card_targets as c

    card = c._resident_card(c.personalised_resident_state())
    card.power_on()
    integrity = [card.process_apdu(a) for a in _read_after("0014", c.NUMBER.encode(), "0003")]
    attributes = [card.process_apdu(a) for a in _read_after("0014", c.NUMBER.encode(), "0002")]
    assert c.SHARED_MARKS[CardInfoFile.INTEGRITY] in integrity[4]
    assert attributes[2][-2:] == b"\x90\x00" and attributes[4] == b"\x69\x82"
    c.run_commands(c._resident_card(c.personalised_resident_state()),
                   _read_after("0014", c.NUMBER.encode(), "0003"), c.RESIDENT_PROTECTED)


def test_a_jpki_signature_needs_the_pin_of_its_key() -> None:
    from cardlib.constants import Aid
    from cardlib.digestinfo import digest_info
    from tests.fuzz import card_targets as c
    from tests.fuzz.registry import ContractViolation

    block = digest_info(hashes.SHA256(), bytes(32))
    sign = f"80 2A 00 80 {len(block):02X} {block.hex()} 00"
    with pytest.raises(ContractViolation, match="signed without its VERIFY"):
        c.run_commands(_Answering(bytes(256) + b"\x90\x00"), _apdus(sign), c.RESIDENT_PROTECTED)
    card = c._resident_card(c.personalised_resident_state())
    card.power_on()
    unverified = [card.process_apdu(a) for a in _apdus(
        f"00 A4 04 0C 0A {Aid.JPKI.hex()}", "00 A4 02 0C 02 001A", sign)]
    assert unverified[2] == b"\x69\x82"
    pin = c.JPKI_SIGN_PIN.encode()
    answers: list[bytes] = []
    original = card.process_apdu
    card.process_apdu = lambda raw: answers.append(original(raw)) or answers[-1]  # type: ignore[method-assign]
    c.run_commands(card, _apdus(f"00 A4 04 0C 0A {Aid.JPKI.hex()}", "00 A4 02 0C 02 001B",
                                f"00 20 00 80 {len(pin):02X} {pin.hex()}", "00 A4 02 0C 02 001A",
                                sign), c.RESIDENT_PROTECTED)
    assert answers[2][-2:] == b"\x90\x00" and len(answers[4]) == 258 and answers[4][-2:] == b"\x90\x00"


def test_the_card_info_sm_target_reads_through_a_real_80_ae_session() -> None:
    from cardlib.apps.card_info import CardInfoApSession
    from tests.fuzz import card_targets as c
    from tests.fuzz.sm_card_targets import _open

    card = c._resident_card(c.personalised_resident_state())
    card.power_on()
    _plain, secure = _open(card)
    assert CardInfoApSession(secure).read_four_info().name == c.NAME
    raw = card.process_apdu(bytes.fromhex("08B00000059603000011" + "00"))  # EF 0002 still selected
    assert raw[:1] == b"\x86" and raw[-2:] == b"\x90\x00" and c.NAME.encode() not in raw
