"""The independent raw-APDU reader (raw_reader.py, from RC alone) on a card our station
issued: the 4 information, the integrity record under the station's anchor, and the
presence proof; and what it must refuse."""

from __future__ import annotations

import datetime as dt

import pytest

from . import raw_reader
from .conftest import CARD_INFO_PIN, SAMPLE_ADDRESS, SAMPLE_NAME, SAMPLE_NUMBER, token_anchor
from .raw_reader import CardError, RawCard

EXPECTED = raw_reader.FourInfo(SAMPLE_NAME, SAMPLE_ADDRESS, dt.date(1980, 2, 17), "1")


def test_raw_reader_imports_only_pyscard_and_cryptography() -> None:
    import ast
    from pathlib import Path

    for module in ("raw_reader.py", "raw_sm.py"):
        tree = ast.parse((Path(__file__).parent / module).read_text(encoding="utf-8"))
        roots = {alias.name.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.Import) for alias in node.names}
        roots |= {node.module.split(".")[0] for node in ast.walk(tree)
                  if isinstance(node, ast.ImportFrom) and node.module and not node.level}
        assert roots <= {"__future__", "cryptography", "smartcard", "datetime", "hashlib",
                         "secrets", "dataclasses"}, (module, roots)


def test_raw_reader_reads_the_four_information(card: RawCard) -> None:
    assert raw_reader.read_four_info(card, CARD_INFO_PIN) == EXPECTED


def test_raw_reader_verifies_the_integrity_record(card: RawCard, station) -> None:  # type: ignore[no-untyped-def]
    anchor_id, modulus = token_anchor(station, "cv-card-info-ca")
    assert raw_reader.verify_integrity(card, CARD_INFO_PIN, modulus, anchor_id) == EXPECTED


def test_raw_reader_runs_the_presence_proof(card: RawCard, station) -> None:  # type: ignore[no-untyped-def]
    anchor_id, modulus = token_anchor(station, "cv-card-info-ca")
    proof = raw_reader.prove_presence(card, 0x0014, SAMPLE_NUMBER, modulus, anchor_id)
    again = raw_reader.prove_presence(card, 0x0011, CARD_INFO_PIN, modulus, anchor_id)
    assert proof.challenge != again.challenge and proof.card_challenge != again.card_challenge
    card_challenge = raw_reader.prove_presence(card, 0x0011, CARD_INFO_PIN, modulus, anchor_id,
                                               challenge=again.card_challenge)
    assert len(card_challenge.signature) == 256


def test_raw_reader_refuses_another_anchor(card: RawCard, station) -> None:  # type: ignore[no-untyped-def]
    """Attack: the right card against the wrong anchor (the surface CA, or the published
    JPKI test key 6000033) must not verify."""
    _id, surface_modulus = token_anchor(station, "cv-surface-ca")
    with pytest.raises(CardError, match="CV certificate"):
        raw_reader.verify_integrity(card, CARD_INFO_PIN, surface_modulus)
    card.reconnect(unpower=True)
    with pytest.raises(CardError, match="CV certificate"):
        raw_reader.prove_presence(card, 0x0011, CARD_INFO_PIN, surface_modulus)


def test_raw_reader_refuses_a_wrong_presence_signature(card: RawCard, station) -> None:  # type: ignore[no-untyped-def]
    """Attack: a card (here: a man in the middle) that answers 80 2A 00 00 with a
    signature over another challenge is caught."""
    anchor_id, modulus = token_anchor(station, "cv-card-info-ca")
    real_transmit = card.transmit
    recorded: list[bytes] = []

    def replaying(apdu):  # type: ignore[no-untyped-def]
        data, sw = real_transmit(apdu)
        raw = bytes.fromhex(apdu.replace(" ", "")) if isinstance(apdu, str) else apdu
        if raw[:4] == bytes.fromhex("802A0000"):
            if recorded:
                return recorded[0], sw
            recorded.append(data)
        return data, sw

    card.transmit = replaying  # type: ignore[method-assign]
    raw_reader.prove_presence(card, 0x0011, CARD_INFO_PIN, modulus, anchor_id)
    with pytest.raises(CardError, match="presence signature"):
        raw_reader.prove_presence(card, 0x0011, CARD_INFO_PIN, modulus, anchor_id)


def _tampering(card: RawCard, fid: int, flip_at: int):  # type: ignore[no-untyped-def]
    """A relay that flips one byte of what READ BINARY returns from EF ``fid``."""
    real_transmit, selected = card.transmit, {"fid": None}

    def relay(apdu):  # type: ignore[no-untyped-def]
        raw = bytes.fromhex(apdu.replace(" ", "")) if isinstance(apdu, str) else apdu
        data, sw = real_transmit(apdu)
        if raw[:4] == bytes.fromhex("00A4020C"):
            selected["fid"] = int.from_bytes(raw[5:7], "big")
        elif raw[1] == 0xB0 and selected["fid"] == fid and raw[2:4] == b"\x00\x00":
            data = data[:flip_at] + bytes([data[flip_at] ^ 0x01]) + data[flip_at + 1:]
        return data, sw

    return relay


@pytest.mark.parametrize(("fid", "flip_at", "field"), [
    (0x0001, 16, "DF31"),  # the filler byte: only the physical digest sees it
    (0x0002, 20, "DF32"),  # a byte of the name
    (0x0003, 100, "DF33"),  # a byte of the signature
])
def test_raw_reader_catches_a_tampered_file(card: RawCard, station, fid: int, flip_at: int,  # type: ignore[no-untyped-def]
                                            field: str) -> None:
    """Attack: one flipped bit in EF 0001 (even in its filler), 0002 or 0003 between card
    and reader fails the integrity check, naming the field."""
    anchor_id, modulus = token_anchor(station, "cv-card-info-ca")
    card.transmit = _tampering(card, fid, flip_at)  # type: ignore[method-assign]
    with pytest.raises(CardError, match=field):
        raw_reader.verify_integrity(card, CARD_INFO_PIN, modulus, anchor_id)
