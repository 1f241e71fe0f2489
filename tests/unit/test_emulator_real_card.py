"""The emulated resident card answers like the real one (real-card.md §2–§10): raw
APDUs through the in-process transport, exact bytes and status words."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from cardlib.apdu import CommandApdu
from cardlib.constants import REAL_CONTACT_ATR, Aid, LifeCycle
from cardlib.digestinfo import PREFIXES
from cardlib.emulator.resident_card_os import ResidentCardOs
from cardlib.emulator.state import CardState
from tests.helpers import card_channel, personalising, raw

PIN, A, B, DOB = "1234", "537686677188", "55021720352285", "550217"
NUMBER_FILE = bytes.fromhex("FF100C") + A.encode()
SAMPLE_B = bytes.fromhex(
    "ff2065df2108000e002000590064df220fe9bb92e6a190e38080e5b9b9e4b99f"
    "df2336e69db1e4baace983bde6b885e780ace5b882e8a6b3e5b883e5ad90e58d"
    "97efbc91efbc92efbc8defbc97efbc8defbc92efbc90efbc92df24083139383030323137df250131")
COMMON_RECORD = bytes.fromhex("011C") + b"4000000127198431322120350217"
ROOT_CV = bytes.fromhex("5F4E820129") + bytes(297) + bytes.fromhex("5F37820100") + bytes(256)
AIDS = {"common": Aid.COMMON, "info": Aid.CARD_INFO, "surface": Aid.CARD_SURFACE,
        "jpki": Aid.JPKI, "juki": Aid.RESIDENT_REGISTRY, "isd": Aid.ISSUER_SECURITY_DOMAIN}


def sel(card: ResidentCardOs, ap: str) -> None:
    aid = AIDS[ap]
    assert raw(card, f"00A4040C{len(aid):02X}{aid.hex()}")[1] == 0x9000


def ef(card: ResidentCardOs, fid: str) -> int:
    return raw(card, "00A4020C02" + fid)[1]


def verify(card: ResidentCardOs, p2: str, secret: str) -> int:
    return raw(card, f"002000{p2}{len(secret):02X}{secret.encode().hex()}")[1]


def _send(channel, hex_apdu: str, data: bytes = b"") -> None:  # type: ignore[no-untyped-def]
    head = bytes.fromhex(hex_apdu)[:4]  # CLA INS P1 P2 (an Lc given is recomputed)
    channel.send(CommandApdu(*head, data) if data else CommandApdu(*head))


def _personalise(plain) -> None:  # type: ignore[no-untyped-def]
    ch = personalising(plain)
    steps = {
        "common": [("00A4020C", b"\x00\x01"), ("00DC0104", COMMON_RECORD),
                   ("00A4020C", b"\x00\x02"), ("00DC0104", bytes(range(16))),
                   ("0024019C", PIN.encode())],
        "info": [("00A4020C", b"\x00\x01"), ("00D60000", NUMBER_FILE),
                 ("00A4020C", b"\x00\x02"), ("00D60000", SAMPLE_B),
                 ("00240191", PIN.encode()), ("00240194", A.encode()), ("00240195", B.encode())],
        "surface": [("00240191", DOB.encode()), ("00240192", B.encode()),
                    ("00240193", A.encode())],
        "jpki": [("00A4020C", b"\x00\x08"), ("00D60000", bytes.fromhex("8F8F00")),
                 ("00240198", b"1234"), ("0024019B", b"ABC123")],
        "juki": [("00A4020C", b"\x00\x02"), ("00DC0104", bytes(range(16))),
                 ("0024019C", PIN.encode())],
        "isd": [("00DA00F8", ROOT_CV), ("00DA00F0", b"13221")],
    }
    keys = {"common": ["99"], "info": ["93", "86"], "surface": ["9A"], "jpki": ["97", "9A"]}
    for ap, commands in steps.items():
        _send(ch, f"00A4040C{len(AIDS[ap]):02X}", AIDS[ap])
        for sfi in keys.get(ap, []):
            ch.send(CommandApdu(0x00, 0x46, 0x00, int(sfi, 16), ne=256))
        for header, data in commands:
            _send(ch, header, data)
    _send(ch, "00A4040C08", Aid.ISSUER_SECURITY_DOMAIN)
    _send(ch, "80F0800F")


@pytest.fixture(scope="module")
def issued_text() -> str:
    card, plain = card_channel()
    _personalise(plain)
    assert card.state.life_cycle == LifeCycle.SECURED
    return card.state.to_json()


@pytest.fixture
def card(issued_text: str) -> ResidentCardOs:
    return card_channel(ResidentCardOs(CardState.from_json(issued_text)))[0]


def public(card: ResidentCardOs, ap: str, fid: str):  # type: ignore[no-untyped-def]
    pem = card.state.apps[AIDS[ap].hex()].keys[fid]
    return serialization.load_pem_private_key(pem.encode(), None).public_key()



def test_real_atr_and_5f51(card: ResidentCardOs) -> None:
    assert card.atr == REAL_CONTACT_ATR == bytes.fromhex("3BE000FF8131FE4514")
    assert raw(card, "00CA5F5100") == (bytes.fromhex("E000FF8131FE4514"), 0x9000)
    for ap in ("jpki", "juki"):  # 5F51 also inside an AP; the MF objects not
        sel(card, ap)
        assert raw(card, "00CA5F5100")[1] == 0x9000
        assert raw(card, "00CA00F000") == (b"", 0x6A88)


def test_select_mf_forms(card: ResidentCardOs) -> None:
    assert raw(card, "00A40000") == (b"", 0x6A86)  # cold reset: no AP selected
    for fid in ("3F00", "2F10", "2F11"):
        assert ef(card, fid) == 0x6A82
    assert raw(card, "00A4000C023F00") == (b"", 0x6A82)
    sel(card, "common")
    assert raw(card, "00A40000") == (b"", 0x9000)  # no-op: the 共通AP stays current
    assert raw(card, "00B2010C00") == (COMMON_RECORD, 0x9000)
    # the ISD by RC's 7-byte AID (a prefix of ours) restores the power-on state
    assert raw(card, "00A4040C07A0000001510000")[1] == 0x9000
    assert raw(card, "00A40000") == (b"", 0x6A86)


def test_mf_internal_ef_and_sfi_sweep(card: ResidentCardOs) -> None:
    assert ef(card, "001E") == 0x9000
    assert raw(card, "00B0000001") == (b"", 0x6981)
    assert raw(card, "00B2010400") == (b"", 0x6981)
    answers = {sfi: raw(card, f"00B0{0x80 | sfi:02X}0001")[1] for sfi in range(1, 0x1F)}
    assert answers == {sfi: (0x6981 if sfi == 0x1E else 0x6A82) for sfi in range(1, 0x1F)}


def test_selecting_another_ap_clears_status_the_same_ap_keeps_it(card: ResidentCardOs) -> None:
    sel(card, "info")
    assert verify(card, "91", PIN) == 0x9000
    sel(card, "info")
    assert raw(card, "00B0810000")[1] == 0x9000
    sel(card, "isd")
    sel(card, "info")
    assert raw(card, "00B0810000") == (b"", 0x6982)



def test_card_info_access_alternatives(card: ResidentCardOs) -> None:
    sel(card, "info")
    for sfi in (1, 2, 3, 6, 7):
        assert raw(card, f"00B0{0x80 | sfi:02X}0000")[1] == 0x6982
    for sfi in (4, 5, 8):
        assert raw(card, f"00B0{0x80 | sfi:02X}0000")[1] == 0x9000
    assert raw(card, "00B0880000") == (b"\xff" * 16, 0x9000)
    assert verify(card, "94", A) == 0x9000  # 照合番号A: 0001, 0003, 0006, 0007 but not 0002
    assert raw(card, "00B0810000") == (NUMBER_FILE + b"\xff\xff", 0x9000)  # 17 physical bytes
    assert raw(card, "00B0820000") == (b"", 0x6982)
    assert [raw(card, f"00B0{0x80 | s:02X}0001")[1] for s in (3, 6, 7)] == [0x9000] * 3
    card.power_off()
    card.power_on()
    sel(card, "info")
    assert verify(card, "95", B) == 0x9000  # 照合番号B: 0002 not 0001
    assert raw(card, "00B0820000")[0][: len(SAMPLE_B)] == SAMPLE_B
    assert raw(card, "00B0810000") == (b"", 0x6982)
    assert verify(card, "91", PIN) == 0x9000  # the PIN opens both
    assert raw(card, "00B0810000")[1] == 0x9000


def test_surface_access(card: ResidentCardOs) -> None:
    sel(card, "surface")
    assert [raw(card, f"00B0{0x80 | s:02X}0001")[1] for s in range(1, 7)] == \
        [0x6982, 0x6982, 0x9000, 0x9000, 0x6982, 0x6982]
    assert verify(card, "91", DOB) == 0x9000
    assert [raw(card, f"00B0{0x80 | s:02X}0001")[1] for s in (1, 2, 5)] == [0x9000, 0x6982, 0x6982]
    assert verify(card, "92", B) == 0x9000
    assert [raw(card, f"00B0{0x80 | s:02X}0001")[1] for s in (2, 5, 6)] == [0x9000, 0x6982, 0x9000]
    assert verify(card, "93", A) == 0x9000
    assert raw(card, "00B0850001")[1] == 0x9000


def test_jpki_files(card: ResidentCardOs) -> None:
    sel(card, "jpki")
    assert raw(card, "00B0880000") == (bytes.fromhex("8F8F00"), 0x9000)  # 3 bytes, no filler
    assert raw(card, "00B0890000") == (b"", 0x6982)  # 0009: nothing opens it
    assert raw(card, "00B0810000") == (b"", 0x6982)
    assert verify(card, "9B", "ABC123") == 0x9000
    assert raw(card, "00B0810004")[1] == 0x9000


def test_read_binary_sfi_makes_the_ef_current_and_bounds(card: ResidentCardOs) -> None:
    sel(card, "info")
    first, sw = raw(card, "00B0850010")
    assert sw == 0x9000 and len(first) == 16
    assert raw(card, "00B0000010") == (first, 0x9000)  # 0005 is now the current EF
    assert raw(card, "00B001FE00") == (b"\xff" * 2, 0x9000)  # Le past the end: the rest
    assert raw(card, "00B0020000") == (b"", 0x6B00)  # offset = size (512): past the end
    assert raw(card, "00B0A00000") == (b"", 0x6A86)  # P1 100xxxxx only


def test_read_record_forms(card: ResidentCardOs) -> None:
    sel(card, "common")
    assert raw(card, "00B2010C00") == (COMMON_RECORD, 0x9000)  # SFI 1
    assert raw(card, "00B2011400") == (bytes(range(16)), 0x9000)  # SFI 2
    assert ef(card, "0001") == 0x9000
    assert raw(card, "00B2010400") == (COMMON_RECORD, 0x9000)
    assert raw(card, "00B2010500") == (b"", 0x6A81)  # multi-record not provided
    assert raw(card, "00B2020400") == (b"", 0x6A83)
    assert raw(card, "00B0000001") == (b"", 0x6981)  # READ BINARY on a record EF
    sel(card, "info")
    assert raw(card, "00B2014400") == (b"", 0x6981)  # READ RECORD on a transparent EF
    sel(card, "juki")  # the public record answers in the clear
    assert raw(card, "00B2011400") == (bytes(range(16)), 0x9000)
    assert ef(card, "0003") == 0x9000
    assert raw(card, "00B0000001") == (b"", 0x6982)  # our record code: SCP03 only


def test_update_binary_past_the_allocated_size() -> None:
    _card, plain = card_channel()
    ch = personalising(plain)
    _send(ch, "00A4040C0A", Aid.CARD_INFO)
    _send(ch, "00A4020C02", b"\x00\x01")
    _, sw = ch.transceive(CommandApdu(0x00, 0xD6, 0x00, 0x00, bytes(18)))
    assert sw == 0x6A84
    _, sw = ch.transceive(CommandApdu(0x00, 0xD6, 0x00, 0x10, b"\x01\x02"))
    assert sw == 0x6A84
    assert ch.transceive(CommandApdu(0x00, 0xD6, 0x00, 0x10, b"\x01"))[1] == 0x9000



def test_verify_counts_down_blocks_63c0_then_6984(card: ResidentCardOs) -> None:
    sel(card, "info")
    assert raw(card, "00200091") == (b"", 0x63C3)
    assert [verify(card, "91", "0000") for _ in range(3)] == [0x63C2, 0x63C1, 0x63C0]
    assert verify(card, "91", PIN) == 0x6984  # never 6983 on the resident card
    assert raw(card, "00200091") == (b"", 0x63C0)
    assert ef(card, "0011") == 0x9000
    assert raw(card, "00200080") == (b"", 0x63C0)


def test_empty_verify_after_success_is_63cx_and_b_has_ten_tries(card: ResidentCardOs) -> None:
    sel(card, "info")
    assert raw(card, "00200095") == (b"", 0x63CA)
    assert verify(card, "91", "0000") == 0x63C2
    assert verify(card, "91", PIN) == 0x9000
    assert raw(card, "00200091") == (b"", 0x63C3)  # OpenSC needs 63Cx here (RC §7.2 [C])
    assert raw(card, "00B0810000")[1] == 0x9000  # and the PIN is still verified


def test_card_info_0012_is_blocked_as_issued(card: ResidentCardOs) -> None:
    sel(card, "info")
    assert raw(card, "00200092") == (b"", 0x63C0)
    assert verify(card, "92", "1234") == 0x6984
    assert verify(card, "91", PIN) == 0x9000
    assert ef(card, "0012") == 0x9000
    assert raw(card, "0024018004" + b"1111".hex())[1] == 0x6984


def test_change_reference_data_and_change_key(card: ResidentCardOs) -> None:
    sel(card, "info")
    assert ef(card, "0011") == 0x9000
    assert raw(card, "0024018004" + b"5678".hex())[1] == 0x6982  # not verified
    assert verify(card, "80", PIN) == 0x9000
    assert raw(card, "0024018004" + b"5678".hex())[1] == 0x9000
    assert verify(card, "91", PIN) == 0x63C2
    sel(card, "common")
    assert ef(card, "001C") == 0x9000
    assert raw(card, "8032008004" + b"9999".hex())[1] == 0x6982
    assert verify(card, "80", PIN) == 0x9000
    assert raw(card, "0024018004" + b"9999".hex())[1] == 0x6985  # 001C: CHANGE KEY only
    assert raw(card, "8032008004" + b"9999".hex())[1] == 0x9000
    assert verify(card, "9C", "9999") == 0x9000
    sel(card, "juki")  # the 住基AP's 001C is a separate key reference
    assert verify(card, "9C", "9999") == 0x63C2
    assert verify(card, "9C", PIN) == 0x9000



def test_get_challenge_lengths_everywhere(card: ResidentCardOs) -> None:
    for ap in (None, "info", "jpki", "juki"):
        if ap:
            sel(card, ap)
        for le, length in (("01", 1), ("10", 16), ("FF", 255), ("00", 256)):
            data, sw = raw(card, "00840000" + le)
            assert sw == 0x9000 and len(data) == length
    assert raw(card, "0084000000") != raw(card, "0084000000")
    assert raw(card, "00840000000100") == (b"", 0x6985)


def test_get_data_mf_objects(card: ResidentCardOs) -> None:
    assert raw(card, "00CA00F800") == (b"", 0x6700)  # 570 bytes: short Le refused
    assert raw(card, "00CA00F8000000") == (ROOT_CV, 0x9000)
    assert raw(card, "00CA00F000") == (b"13221", 0x9000)
    assert raw(card, "00CA004200") == (b"", 0x6A88)
    assert raw(card, "00CA7F21000000") == (b"", 0x6A88)
    sel(card, "isd")
    assert raw(card, "80CA00F000") == (b"13221", 0x9000)
    assert raw(card, "00CA9F7000") == (bytes.fromhex("9F7001") + bytes((LifeCycle.SECURED,)),
                                       0x9000)
    assert raw(card, "00DA00F005" + b"99999".hex())[1] == 0x6982  # PUT DATA: issuance only
    sel(card, "common")
    assert raw(card, "00CA00F000") == (b"", 0x6A88)





def test_internal_authenticate_99_form(card: ResidentCardOs) -> None:
    sel(card, "common")
    first, sw = raw(card, "0088009905" + b"hello".hex() + "00")
    assert sw == 0x9000 and len(first) == 256
    public(card, "common", "0019").verify(first, b"hello", padding.PKCS1v15(), hashes.SHA256())
    assert raw(card, "0088009905" + b"hello".hex() + "00")[0] == first  # deterministic
    assert raw(card, "00880099FF" + "01" * 255 + "00")[1] == 0x9000
    assert raw(card, "0088009900010000" + "01" * 256 + "0000")[1] == 0x6700
    sel(card, "surface")
    assert raw(card, "0088009A0401020304" + "00") == (b"", 0x6985)  # 券面 signing key
    sel(card, "info")
    assert raw(card, "008800930401020304" + "00") == (b"", 0x6985)
    sel(card, "jpki")
    assert verify(card, "98", "1234") == 0x9000
    assert raw(card, "008800970401020304" + "00") == (b"", 0x6982)  # PIN-protected key


def _digest_info(message: bytes) -> bytes:
    return PREFIXES["sha256"] + hashlib.sha256(message).digest()


def test_jpki_signature_schemes(card: ResidentCardOs) -> None:
    sel(card, "jpki")
    message = b"resident registry"
    sign = lambda p1, p2, data: raw(card, f"802A{p1:02X}{p2}{len(data):02X}{data.hex()}00")  # noqa: E731
    assert sign(0, "97", _digest_info(message)) == (b"", 0x6982)  # before the PIN
    assert verify(card, "98", "1234") == 0x9000
    key = public(card, "jpki", "0017")
    pss = padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.AUTO)
    sig, sw = sign(0, "97", _digest_info(message))
    key.verify(sig, message, padding.PKCS1v15(), hashes.SHA256())
    assert ef(card, "0017") == 0x9000 and sign(0, "80", _digest_info(message)) == (sig, sw)
    no_null = bytes.fromhex("302f300b0609608648016503040201" "0420") + hashlib.sha256(message).digest()
    sig = sign(0, "97", no_null)[0]  # a DigestInfo without NULL parameters: padded as is
    assert key.recover_data_from_signature(sig, padding.PKCS1v15(), None) == no_null
    sig = sign(1, "97", message)[0]
    assert key.recover_data_from_signature(sig, padding.PKCS1v15(), None) == \
        hashlib.sha256(message).digest()
    key.verify(sign(2, "97", hashlib.sha256(message).digest())[0], message, padding.PKCS1v15(),
               hashes.SHA256())
    key.verify(sign(3, "97", message)[0], message, padding.PKCS1v15(), hashes.SHA256())
    key.verify(sign(4, "97", hashlib.sha256(message).digest())[0], message, pss, hashes.SHA256())
    key.verify(sign(5, "97", message)[0], message, pss, hashes.SHA256())
    assert sign(6, "97", message) == (b"", 0x6A86)
    assert sign(2, "97", bytes(31))[1] == 0x6700
    assert sign(4, "97", bytes(33))[1] == 0x6700
    assert sign(0, "9A", _digest_info(message)) == (b"", 0x6982)  # 001A needs 001B


@pytest.mark.parametrize(("ap", "fid"), [("info", "0013"), ("surface", "001A")])
def test_presence_signature_without_credential(card: ResidentCardOs, ap: str, fid: str) -> None:
    sel(card, ap)
    challenge, _ = raw(card, "0084000010")
    sig, sw = raw(card, "802A000033" + _digest_info(challenge).hex() + "00")
    assert sw == 0x9000
    public(card, ap, fid).verify(sig, challenge, padding.PKCS1v15(), hashes.SHA256())
    assert raw(card, "802A008033" + _digest_info(challenge).hex() + "00")[1] == 0x6A86



def test_class_byte_rules(card: ResidentCardOs) -> None:
    assert raw(card, "01A4040C0A" + Aid.CARD_INFO.hex()) == (b"", 0x6881)
    assert raw(card, "0384000008") == (b"", 0x6881)
    assert raw(card, "80FC0000") == (b"", 0x6700)
    assert raw(card, "80A20000") == (b"", 0x6A86)
    assert raw(card, "08A4020C020001") == (b"", 0x6882)  # SM class, no session
    sel(card, "jpki")
    assert raw(card, "08B0000000") == (b"", 0x69FC)
    assert raw(card, "0820009804" + b"1234".hex()) == (b"", 0x69FC)
    sel(card, "info")
    assert raw(card, "0CB0000000") == (b"", 0x6987)


def test_set_session_key_routing(card: ResidentCardOs) -> None:
    cryptogram = "80AE0000000100" + "01" * 256
    for ap, sw in (("common", 0x66F1), ("surface", 0x66F1), ("jpki", 0x6982), ("juki", 0x6982)):
        sel(card, ap)
        assert raw(card, cryptogram) == (b"", sw)
    sel(card, "juki")
    assert verify(card, "9C", PIN) == 0x9000
    assert raw(card, cryptogram) == (b"", 0x6982)  # even with the PIN
    sel(card, "info")
    assert raw(card, cryptogram) == (b"", 0x6982)
    assert verify(card, "94", A) == 0x9000
    assert raw(card, cryptogram) == (b"", 0x6982)  # 照合番号A is not enough
    assert verify(card, "91", PIN) == 0x9000
    assert raw(card, cryptogram)[1] in (0x6A80, 0x6F00)  # reaches the key: not ours


def test_secure_messaging_session_reads_through_the_card_os(card: ResidentCardOs) -> None:
    from cardlib.apps.base import ApplicationSession
    from cardlib.text_sm import open_text_sm

    channel = card_channel(card)[1]
    sel(card, "info")
    assert verify(card, "91", PIN) == 0x9000
    secure = open_text_sm(channel, public(card, "info", "0006"))
    assert card.text_sm is not None and card.text_sm.active
    session = ApplicationSession(secure, Aid.CARD_INFO)
    session.select_ef(0x0001)
    assert session.read_binary(0, 65536) == NUMBER_FILE + b"\xff\xff"
    sel(card, "info")  # any AP SELECT ends the session
    assert not card.text_sm.active
    assert raw(card, "08B00000" "000005" "9603000000" "0000") == (b"", 0x69FC)
