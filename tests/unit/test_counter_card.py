"""The counter session on an issued card (docs/protocol.md, "Counter session on an issued
card"): each command of the counter set changes exactly what it should and nothing else,
read back with the right credential (in-process card, the test transport keys)."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from cardlib.apps.base import WritableApSession
from cardlib.apps.jpki import JpkiApSession, JpkiKey
from cardlib.constants import Aid, CardInfoFile, CommonFile, JpkiFile, JukiFile
from cardlib.emulator.resident_card_os import ResidentCardOs
from cardlib.errors import InvalidPinError
from tests.helpers import card_channel, personalising, raw
from tests.unit.counter_card_fixtures import (
    JPKI_AUTH,
    JPKI_SIGN,
    PIN,
    changed,
    counter,
    fresh,
    issued_counter_text,
    select,
    send,
    snapshot,
    tries,
)

__all__ = ["issued_counter_text"]
INFO, JPKI, COMMON, JUKI = (Aid.CARD_INFO.hex(), Aid.JPKI.hex(), Aid.COMMON.hex(),
                            Aid.RESIDENT_REGISTRY.hex())


def test_rewrite_of_card_info_0002_erases_then_writes(issued_counter_text: str) -> None:
    card, plain = fresh(issued_counter_text)
    before = snapshot(card)
    ap = WritableApSession(counter(plain), Aid.CARD_INFO)
    ap.select()
    ap.erase_binary(CardInfoFile.ATTRIBUTES)
    assert card.state.apps[INFO].files["0002"].content == b"\xff" * 1024
    new = bytes.fromhex("FF2003DF2100")
    ap.write_file(CardInfoFile.ATTRIBUTES, new)
    assert changed(before, card) == {(INFO, "file", "0002")}
    card.power_on()  # read back in the clear, with the PIN that opens it
    session = WritableApSession(plain, Aid.CARD_INFO)
    session.select()
    session.verify_pin(PIN, CardInfoFile.PIN)
    assert session.read_physical(CardInfoFile.ATTRIBUTES) == new + b"\xff" * (1024 - len(new))


def test_erase_binary_from_an_offset_keeps_the_head(issued_counter_text: str) -> None:
    card, plain = fresh(issued_counter_text)
    secure = counter(plain)
    select(secure, "info", CardInfoFile.ATTRIBUTES)
    head = card.state.apps[INFO].files["0002"].content[:16]
    assert send(secure, 0x00, 0x0E, 0x00, 0x10)[1] == 0x9000
    assert card.state.apps[INFO].files["0002"].content == head + b"\xff" * (1024 - 16)
    assert send(secure, 0x00, 0x0E, 0x04, 0x01)[1] == 0x6B00  # past the end
    assert send(secure, 0x00, 0x0E, 0x00, 0x00, b"\x00")[1] == 0x6700  # no data


def test_rewrite_of_the_jpki_certificates_and_integrity(issued_counter_text: str) -> None:
    card, plain = fresh(issued_counter_text)
    before = snapshot(card)
    secure = counter(plain)
    for aid, fid in ((Aid.CARD_INFO, CardInfoFile.INTEGRITY), (Aid.JPKI, JpkiFile.SIGN_CERT),
                     (Aid.JPKI, JpkiFile.SIGN_CA_CERT), (Aid.JPKI, JpkiFile.AUTH_CERT),
                     (Aid.JPKI, JpkiFile.AUTH_CA_CERT)):
        writer = WritableApSession(secure, aid)
        writer.select()
        writer.erase_binary(fid)
        writer.write_file(fid, bytes([fid]) * 300)  # more than one UPDATE BINARY chunk
    expected = {(INFO, "file", "0003")} | {(JPKI, "file", f) for f in ("0001", "0002", "000A",
                                                                        "000B")}
    assert changed(before, card) == expected
    assert card.state.apps[JPKI].files["000A"].content[:301] == b"\x0a" * 300 + b"\xff"


def test_rewrite_of_the_common_record_1(issued_counter_text: str) -> None:
    card, plain = fresh(issued_counter_text)
    before = snapshot(card)
    record = bytes.fromhex("011C") + b"400000012719843" + b"13101" + b"20350217"
    ap = WritableApSession(counter(plain), Aid.COMMON)
    ap.select()
    ap.update_record(CommonFile.CARD_INFO_RECORD, 1, record)
    assert changed(before, card) == {(COMMON, "record", "0001", "1")}
    card.power_on()
    select(plain, "common", CommonFile.CARD_INFO_RECORD)
    assert raw(card, "00B2010400") == (record, 0x9000)


def test_regenerated_jpki_key_signs_under_the_returned_public_key(
        issued_counter_text: str) -> None:
    card, plain = fresh(issued_counter_text)
    old = card.state.apps[JPKI].keys["001A"]
    before = snapshot(card)
    ap = WritableApSession(counter(plain), Aid.JPKI)
    ap.select()
    public_key = ap.generate_rsa_key(JpkiFile.SIGN_KEY)
    assert changed(before, card) == {(JPKI, "key", "001A")}
    assert card.state.apps[JPKI].keys["001A"] != old
    card.power_on()
    jpki = JpkiApSession(plain)
    jpki.select()
    jpki.verify_key_pin(JpkiKey.SIGN, JPKI_SIGN)
    digest = hashlib.sha256(b"counter").digest()
    signature = jpki.sign_digest(JpkiKey.SIGN, hashes.SHA256(), digest)
    public_key.verify(signature, b"counter", padding.PKCS1v15(), hashes.SHA256())


def test_auth_key_regenerates_by_sfi_reference(issued_counter_text: str) -> None:
    card, plain = fresh(issued_counter_text)
    before = snapshot(card)
    secure = counter(plain)
    select(secure, "jpki")
    data, sw = send(secure, 0x00, 0x46, 0x00, 0x97, ne=256)
    assert sw == 0x9000 and data
    assert changed(before, card) == {(JPKI, "key", "0017")}


RESETS = [("info", INFO, CardInfoFile.PIN, PIN, "5678"),
          ("jpki", JPKI, JpkiFile.AUTH_PIN, JPKI_AUTH, "9876"),
          ("jpki", JPKI, JpkiFile.SIGN_PIN, JPKI_SIGN, "NEWSIGN99"),
          ("common", COMMON, CommonFile.PIN, PIN, "4321"),
          ("juki", JUKI, JukiFile.PIN, PIN, "2468")]


EVERY_KEY = {"info": (0x11, 0x12, 0x14, 0x15), "surface": (0x11, 0x12, 0x13),
             "jpki": (0x18, 0x1B), "common": (0x1C,), "juki": (0x1C,)}


def empty_verify_all(card: ResidentCardOs) -> dict[tuple[str, int], int]:
    """The status word of an empty VERIFY (spends nothing) of every key reference."""
    card.power_on()
    answers = {}
    for ap, fids in EVERY_KEY.items():
        select(card_channel(card)[1], ap)
        for fid in fids:
            answers[(ap, fid)] = raw(card, f"002000{0x80 | fid:02X}")[1]
    return answers


@pytest.mark.parametrize(("ap", "aid", "fid", "old", "new"), RESETS,
                         ids=[f"{r[0]}-{r[2]:04X}" for r in RESETS])
def test_reset_pin_sets_the_value_and_the_full_counter_and_nothing_else(
        issued_counter_text: str, ap: str, aid: str, fid: int, old: str, new: str) -> None:
    card, plain = fresh(issued_counter_text)
    select(plain, ap)  # spend a try on the target (a blocked one resets too)
    assert raw(card, f"002000{0x80 | fid:02X}0400000000")[1] & 0xFFF0 == 0x63C0
    before, counters, answers = snapshot(card), tries(card), empty_verify_all(card)
    secure = counter(plain)
    select(secure, ap, fid)
    assert send(secure, 0x00, 0x2C, 0x02, 0x80, new.encode())[1] == 0x9000
    key = (aid, f"{fid:04X}")
    assert changed(before, card) == {(aid, "pin", key[1])}
    after = tries(card)
    assert after[key] == card.state.apps[aid].pins[key[1]].max_tries
    assert {k: v for k, v in after.items() if k != key} == \
        {k: v for k, v in counters.items() if k != key}
    now = empty_verify_all(card)  # read back by empty VERIFY too
    assert now.pop((ap, fid)) == 0x63C0 | min(after[key], 0x0F) != answers.pop((ap, fid))
    assert now == answers
    card.power_on()  # the new value verifies, the old does not
    session = WritableApSession(plain, bytes(Aid(bytes.fromhex(aid))))
    session.select()
    with pytest.raises(InvalidPinError):
        session.verify_pin(old, fid)
    session.verify_pin(new, fid)


def test_reset_clears_the_verified_state_of_that_pin_only(issued_counter_text: str) -> None:
    card, plain = fresh(issued_counter_text)
    secure = counter(plain)
    select(secure, "jpki")
    for p2, secret in (("98", JPKI_AUTH), ("9B", JPKI_SIGN)):  # plain VERIFY in the session
        assert raw(card, f"002000{p2}{len(secret):02X}{secret.encode().hex()}")[1] == 0x9000
    assert send(secure, 0x00, 0x2C, 0x02, 0x98, b"1111")[1] == 0x9000
    assert card.ram.verified == {"001B"}


def test_a_blocked_pin_is_reset(issued_counter_text: str) -> None:
    card, plain = fresh(issued_counter_text)
    select(plain, "info")
    for _ in range(3):
        raw(card, "0020009104" + b"0000".hex())
    assert raw(card, "00200091")[1] == 0x63C0
    secure = counter(plain)
    select(secure, "info")
    assert send(secure, 0x00, 0x2C, 0x02, 0x91, b"8642")[1] == 0x9000
    card.power_on()
    select(plain, "info")
    assert raw(card, "00200091")[1] == 0x63C3
    assert raw(card, "0020009104" + b"8642".hex())[1] == 0x9000


@pytest.mark.parametrize("value", [b"abc123", b"ABC12", b"A" * 17, "ÄBC123".encode(), b""])
def test_jpki_sign_pin_of_the_wrong_format_is_refused(issued_counter_text: str,
                                                      value: bytes) -> None:
    card, plain = fresh(issued_counter_text)
    before = snapshot(card)
    secure = counter(plain)
    select(secure, "jpki", JpkiFile.SIGN_PIN)
    assert send(secure, 0x00, 0x2C, 0x02, 0x80, value)[1] == 0x6A80
    assert changed(before, card) == set()
    card.power_on()
    select(plain, "jpki")
    assert raw(card, f"0020009B06{JPKI_SIGN.encode().hex()}")[1] == 0x9000


def test_four_digit_pins_refuse_other_formats(issued_counter_text: str) -> None:
    card, plain = fresh(issued_counter_text)
    before = snapshot(card)
    secure = counter(plain)
    for ap, p2 in (("info", 0x91), ("jpki", 0x98), ("common", 0x9C), ("juki", 0x9C)):
        select(secure, ap)
        for value in (b"123", b"12345", b"12a4"):
            assert send(secure, 0x00, 0x2C, 0x02, p2, value)[1] == 0x6A80
    assert send(secure, 0x00, 0x2C, 0x01, 0x9C, b"1234")[1] == 0x6A86  # a reset code: not ours
    assert changed(before, card) == set()


def test_a_failed_state_write_keeps_the_old_values(issued_counter_text: str) -> None:
    card, plain = fresh(issued_counter_text)
    secure = counter(plain)
    before = snapshot(card)

    def disk_full(_state) -> None:  # type: ignore[no-untyped-def]
        raise OSError("disk full")

    card._persist = disk_full
    select(secure, "jpki")
    assert send(secure, 0x00, 0x2C, 0x02, 0x9B, b"OTHER123")[1] == 0x6581
    assert send(secure, 0x00, 0x46, 0x00, 0x9A, ne=256)[1] == 0x6581
    select(secure, "jpki", JpkiFile.AUTH_CERT)
    assert send(secure, 0x00, 0x0E, 0x00, 0x00)[1] == 0x6581
    assert send(secure, 0x00, 0xD6, 0x00, 0x00, b"\x30\x00")[1] == 0x6581
    select(secure, "common", CommonFile.CARD_INFO_RECORD)
    assert send(secure, 0x00, 0xDC, 0x01, 0x04, b"\x01\x00")[1] == 0x6581
    assert changed(before, card) == set()


def test_personalisation_takes_erase_and_reset_too() -> None:
    card, plain = card_channel()
    secure = personalising(plain)
    select(secure, "jpki", JpkiFile.AUTH_CERT)
    assert send(secure, 0x00, 0xD6, 0x00, 0x00, b"\x30\x03")[1] == 0x9000
    assert send(secure, 0x00, 0x0E, 0x00, 0x00)[1] == 0x9000
    assert card.state.apps[JPKI].files["000A"].content == b"\xff" * 4096
    assert send(secure, 0x00, 0x2C, 0x02, 0x9B, b"FIRST1")[1] == 0x9000
    assert send(secure, 0x00, 0x2C, 0x02, 0x98, b"12")[1] == 0x6A80
    select(secure, "info")
    assert send(secure, 0x00, 0x2C, 0x02, 0x94, b"123456789012")[1] == 0x6985  # 照合番号A
    assert card.state.apps[JPKI].pins["001B"].is_set()
