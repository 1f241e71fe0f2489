"""Card-info reads with each credential, in the clear and under the AP's secure messaging,
against the emulated card in process: what each credential opens, what is on the wire,
the integrity record under an anchored EF 0004 key; dump and check of the same card."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from cardlib.apdu import CommandApdu, split_response
from cardlib.apps.base import WritableApSession
from cardlib.apps.card_info import CardInfoApSession, CardInfoKey
from cardlib.apps.issuer import IssuerSession
from cardlib.card_info_records import encode_session_key_file, encode_signed_key
from cardlib.channel import ApduChannel
from cardlib.constants import Aid, CardInfoFile, SurfaceFile
from cardlib.cv_certificate import CvChainError, KeyId, cv_body, make_cv_certificate
from cardlib.emulator.resident_card_os import ResidentCardOs
from cardlib.emulator.state import CardState
from cardlib.errors import CardDataError, SecurityStatusNotSatisfiedError
from cardlib.integrity import attributes_digest, encode_integrity_record, number_digest, signed_part
from cardlib.records import encode_four_info, encode_individual_number
from tests.helpers import SAMPLE_INFO, card_channel, personalising
from tools.resident.card_check import check_card, check_dump
from tools.resident.card_dump import dump_card, load_dump, write_dump
from tools.resident.card_info import Credential, What, read_card_info
from tools.station.pins import Pin

PIN, NUMBER, B = "2468", "537686677188", "60041220352285"
CA_ID, SIGNER_ID = KeyId.parse("7000033/001"), KeyId.parse("7000031/001")
SURFACE_CA_ID, SURFACE_SIGNER_ID = KeyId.parse("7000023/001"), KeyId.parse("7000021/001")


def _sign(key: rsa.RSAPrivateKey, data: bytes) -> bytes:
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


@pytest.fixture(scope="module")
def keys() -> dict[str, rsa.RSAPrivateKey]:
    return {name: rsa.generate_private_key(65537, 2048) for name in ("ca", "signer", "rogue")}


def _personalise(channel: ApduChannel, keys: dict[str, rsa.RSAPrivateKey]) -> None:
    secure = personalising(channel)
    info = WritableApSession(secure, Aid.CARD_INFO)
    info.select()
    number = encode_individual_number(NUMBER)
    attributes = encode_four_info(SAMPLE_INFO)
    physical_number = number + b"\xff" * (17 - len(number))
    digests = number_digest(physical_number), attributes_digest(attributes)
    signer = keys["signer"]
    record = encode_integrity_record(*digests, _sign(signer, signed_part(*digests)))
    certificate = make_cv_certificate(CA_ID, SIGNER_ID, signer.public_key(), _sign(
        keys["ca"], cv_body(CA_ID, SIGNER_ID, signer.public_key())))
    session_key = info.generate_rsa_key(CardInfoFile.SESSION_KEY)
    presence_key = info.generate_rsa_key(CardInfoFile.PRESENCE_KEY)
    for fid, content in ((CardInfoFile.INDIVIDUAL_NUMBER, number),
                         (CardInfoFile.ATTRIBUTES, attributes),
                         (CardInfoFile.INTEGRITY, record),
                         (CardInfoFile.CV_CERTIFICATE, certificate.encode()),
                         (CardInfoFile.SESSION_KEY, encode_session_key_file(session_key)),
                         (CardInfoFile.SIGNED_KEY, encode_signed_key(
                             presence_key, lambda data: _sign(signer, data)))):
        info.write_file(fid, content)
    for fid, secret in ((CardInfoFile.PIN, PIN), (CardInfoFile.COLLATION_A, NUMBER),
                        (CardInfoFile.COLLATION_B, B)):
        info.set_pin(fid, secret)
    surface = WritableApSession(secure, Aid.CARD_SURFACE)
    surface.select()
    surface_certificate = make_cv_certificate(
        SURFACE_CA_ID, SURFACE_SIGNER_ID, signer.public_key(),
        _sign(keys["ca"], cv_body(SURFACE_CA_ID, SURFACE_SIGNER_ID, signer.public_key())))
    surface.write_file(SurfaceFile.CV_CERTIFICATE, surface_certificate.encode())
    issuer = IssuerSession(secure)
    issuer.select()
    issuer.lock()


@pytest.fixture(scope="module")
def issued_state(keys: dict[str, rsa.RSAPrivateKey]) -> str:
    card, channel = card_channel()
    _personalise(channel, keys)
    return card.state.to_json()


class Tap:
    """The in-process link, recording every command APDU."""

    def __init__(self, card: ResidentCardOs) -> None:
        self.card, self.sent = card, []

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]:
        self.sent.append(apdu)
        return split_response(self.card.process_apdu(apdu))

    def close(self) -> None:
        pass


@pytest.fixture
def card(issued_state: str) -> tuple[ResidentCardOs, Tap, ApduChannel]:
    emulated = ResidentCardOs(CardState.from_json(issued_state))
    emulated.power_on()
    tap = Tap(emulated)
    return emulated, tap, ApduChannel(tap)


@pytest.fixture
def anchors(keys: dict[str, rsa.RSAPrivateKey]) -> dict[bytes, rsa.RSAPublicKey]:
    return {CA_ID.raw: keys["ca"].public_key(), SURFACE_CA_ID.raw: keys["ca"].public_key()}


def credential(key: CardInfoKey, secret: str, secure: bool = False) -> Credential:
    return Credential(key, Pin(secret), secure, Pin(PIN) if secure else None)


def test_pin_opens_both(card, anchors) -> None:  # type: ignore[no-untyped-def]
    _, _, channel = card
    reading = read_card_info(CardInfoApSession(channel), credential(CardInfoKey.PIN, PIN),
                             What.ALL, anchors)
    assert reading.four_info == SAMPLE_INFO and reading.individual_number == NUMBER
    assert reading.integrity["checked"] == ["DF31", "DF32"]
    assert reading.integrity["anchor"] == "7000033/001"


# (credential, its secret, what it reads, the number and the 4 information it releases,
#  the file it leaves closed, what it refuses to ask for)
COLLATION_READS = [
    (CardInfoKey.COLLATION_A, NUMBER, What.NUMBER, NUMBER, None, CardInfoFile.ATTRIBUTES,
     What.IDENTITY),
    (CardInfoKey.COLLATION_B, B, What.IDENTITY, None, SAMPLE_INFO, CardInfoFile.INDIVIDUAL_NUMBER,
     What.NUMBER),
]


@pytest.mark.parametrize(("key", "secret", "what", "number", "four_info", "closed", "refused"),
                         COLLATION_READS, ids=["a_opens_the_number_not_the_4_information",
                                               "b_opens_the_4_information_not_the_number"])
def test_a_collation_number_opens_its_file_only(card, anchors, key, secret, what, number,  # type: ignore[no-untyped-def]
                                                four_info, closed, refused) -> None:
    _, _, channel = card
    session = CardInfoApSession(channel)
    reading = read_card_info(session, credential(key, secret), what, anchors)
    assert reading.individual_number == number and reading.four_info == four_info
    with pytest.raises(SecurityStatusNotSatisfiedError):
        session.read_file(closed)
    with pytest.raises(ValueError, match="does not open"):
        read_card_info(session, credential(key, secret), refused, anchors)


def _sm_commands(sent: list[bytes]) -> list[bytes]:
    return [apdu for apdu in sent if apdu[0] == 0x08]


def test_secure_read_with_the_pin(card, anchors) -> None:  # type: ignore[no-untyped-def]
    _, tap, channel = card
    reading = read_card_info(CardInfoApSession(channel),
                             credential(CardInfoKey.PIN, PIN, secure=True), What.ALL, anchors)
    assert reading.individual_number == NUMBER and reading.integrity["secure_messaging"]
    set_key = next(i for i, apdu in enumerate(tap.sent) if apdu[:2] == b"\x80\xae")
    pin_verifies = [i for i, apdu in enumerate(tap.sent) if apdu[1] == 0x20 and PIN.encode()
                    in apdu]
    assert pin_verifies and max(pin_verifies) < set_key  # the PIN only in the clear, before
    after = tap.sent[set_key + 1:]
    assert after and all(apdu[0] == 0x08 for apdu in after
                         if apdu[1] in (0xA4, 0xB0) and apdu[2] != 0x04)
    assert not any(NUMBER.encode() in apdu for apdu in tap.sent)


def test_secure_read_with_collation_a(card, anchors) -> None:  # type: ignore[no-untyped-def]
    _, tap, channel = card
    reading = read_card_info(CardInfoApSession(channel),
                             credential(CardInfoKey.COLLATION_A, NUMBER, secure=True),
                             What.NUMBER, anchors)
    assert reading.individual_number == NUMBER
    assert any(apdu[:4] == bytes.fromhex("08200094") for apdu in tap.sent)
    assert not any(NUMBER.encode() in apdu for apdu in tap.sent)  # A is the number itself


def test_secure_messaging_needs_the_pin(card) -> None:  # type: ignore[no-untyped-def]
    emulated, _, channel = card
    session = CardInfoApSession(channel)
    session.select()
    cryptogram = bytes(256)
    apdu = CommandApdu(0x80, 0xAE, 0, 0, cryptogram)
    assert channel.transceive(apdu)[1] == 0x6982  # nothing presented
    session.present(CardInfoKey.COLLATION_A, NUMBER)
    assert channel.transceive(apdu)[1] == 0x6982  # 照合番号A accepted, still 6982
    with pytest.raises(SecurityStatusNotSatisfiedError):
        session.open_secure_messaging()  # EF 0006 opens with A; SET SESSION KEY does not
    assert not emulated.text_sm.active


def test_pin_never_under_secure_messaging(card) -> None:  # type: ignore[no-untyped-def]
    _, _, channel = card
    session = CardInfoApSession(channel)
    session.select()
    session.present(CardInfoKey.PIN, PIN)
    secure = session.open_secure_messaging()
    with pytest.raises(ValueError, match="clear"):
        secure.present(CardInfoKey.PIN, PIN)


def test_unanchored_or_tampered_card_refused(card, keys) -> None:  # type: ignore[no-untyped-def]
    emulated, _, channel = card
    with pytest.raises(CvChainError):
        read_card_info(CardInfoApSession(channel), credential(CardInfoKey.PIN, PIN), What.ALL,
                       {CA_ID.raw: keys["rogue"].public_key()})
    entry = emulated.state.apps[Aid.CARD_INFO.hex()].files["0001"]
    content = bytearray(entry.content)
    content[-3] ^= 0x01  # the last digit of the number changes; the record does not
    entry.data = bytes(content).hex()
    with pytest.raises(CardDataError, match="DF31"):
        read_card_info(CardInfoApSession(channel), credential(CardInfoKey.PIN, PIN), What.NUMBER,
                       {CA_ID.raw: keys["ca"].public_key()})


def test_filler_is_part_of_df31(card, anchors) -> None:  # type: ignore[no-untyped-def]
    emulated, _, channel = card
    entry = emulated.state.apps[Aid.CARD_INFO.hex()].files["0001"]
    entry.data = (entry.content[:-1] + b"\x00").hex()  # only the filler changes
    with pytest.raises(CardDataError, match="DF31"):
        read_card_info(CardInfoApSession(channel), credential(CardInfoKey.PIN, PIN), What.NUMBER,
                       anchors)


def describe(raw: bytes) -> str:
    return "test anchor"


def test_dump_and_check_from_dump(card, anchors, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _, _, channel = card
    dump = dump_card(channel, credential(CardInfoKey.PIN, PIN))
    number = dump.file("card_info", "0001")
    assert number is not None and len(number.data) == 17 and number.data.endswith(b"\xff\xff")
    assert "individual_number" in dump.identity_fields() and "name" in dump.identity_fields()

    def write(relative: str, data: bytes) -> None:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(data)

    write_dump(dump, write)
    index = json.loads((tmp_path / "index.json").read_text())
    assert {"ap": "card_info", "id": "0004", "path": "card_info/0004.bin", "size": 568} \
        .items() <= next(f for f in index["files"] if f["path"] == "card_info/0004.bin").items()
    loaded, digests = load_dump(lambda relative: (tmp_path / relative).read_bytes())
    report = check_dump(loaded, digests, anchors, describe)
    # this card's JPKI AP was left blank: the only failures, named as such
    assert report.failed == [
        "jpki auth certificate (EF 000A) under EF 000B: empty (filler only): not personalised"]
    attributes = tmp_path / "card_info" / "0002.bin"
    attributes.write_bytes(attributes.read_bytes().replace("山田".encode(), "川田".encode()))
    loaded, digests = load_dump(lambda relative: (tmp_path / relative).read_bytes())
    report = check_dump(loaded, digests, anchors, describe)
    assert not report.ok
    assert any("DF32" in failure for failure in report.failed)
    assert any("card_info/0002.bin" in failure for failure in report.failed)


def test_dump_without_credential_holds_no_identity(card) -> None:  # type: ignore[no-untyped-def]
    _, _, channel = card
    dump = dump_card(channel, None)
    assert dump.identity_fields() == []
    refused = {(r["ap"], r["id"]): r["sw"] for r in dump.refused}
    assert refused[("card_info", "0001")] == "6982" and refused[("card_info", "0002")] == "6982"
    assert dump.file("card_info", "0004") is not None


def test_dump_withholds_the_credential_from_an_unanchored_ap(card, anchors) -> None:  # type: ignore[no-untyped-def]
    """`card dump`/`card check --with`: a card-info or surface AP whose EF 0004 does not
    chain to an anchor of its role never sees the PIN or 照合番号A/B (found: they were
    presented to every AP, the surface AP's unchecked chain included)."""
    _, tap, channel = card
    only_surface = {SURFACE_CA_ID.raw: anchors[SURFACE_CA_ID.raw]}
    dump = dump_card(channel, credential(CardInfoKey.PIN, PIN), only_surface)
    assert not any(apdu[1] == 0x20 and len(apdu) > 5 for apdu in tap.sent)  # no VERIFY sent
    assert dump.identity_fields() == []
    assert {(r["ap"], r["id"]): r["sw"] for r in dump.refused}[("card_info", "0001")] == "6982"
    assert "individual_number" in dump_card(channel, credential(CardInfoKey.PIN, PIN),
                                            anchors).identity_fields()


def test_dump_index_names_no_other_path(tmp_path) -> None:  # type: ignore[no-untyped-def]
    index = {"files": [{"ap": "../..", "id": "0001", "path": "../../etc/passwd",
                        "read": "x", "sha256": ""}]}
    (tmp_path / "index.json").write_text(json.dumps(index))
    with pytest.raises(CardDataError, match="no such file"):
        load_dump(lambda relative: (tmp_path / relative).read_bytes())


def test_live_check_spends_no_try(card, anchors) -> None:  # type: ignore[no-untyped-def]
    _, _, channel = card
    report, _ = check_card(channel, anchors, describe)
    keys = report.applications["card_info"]["keys"]
    assert keys["0011"]["tries_left"] == 3 and keys["0015"]["tries_left"] == 10
    assert keys["0012"]["blocked"]
    files = report.applications["card_info"]["files"]
    assert files["0004"]["readable"] and not files["0001"]["readable"]
    assert files["0001"]["read"] == "6982"
    chain = next(f for f in report.findings if f.check.startswith("card_info CV"))
    assert chain.ok and "7000033/001" in chain.detail
    report, _ = check_card(channel, anchors, describe)
    assert report.applications["card_info"]["keys"]["0011"]["tries_left"] == 3


def test_card_os_destroys_the_session_on_a_replay(card) -> None:  # type: ignore[no-untyped-def]
    emulated, tap, channel = card
    session = CardInfoApSession(channel)
    session.select()
    session.present(CardInfoKey.PIN, PIN)
    secure = session.open_secure_messaging()
    secure.select_ef(CardInfoFile.INTEGRITY)
    replay = tap.sent[-1]
    assert replay[:4] == bytes.fromhex("08A4020C")
    data, sw = tap.send_and_receive(replay)  # N=1's command again, at N=2
    assert (data, sw) == (b"", 0x6988) and not emulated.text_sm.active
    for later in (replay, bytes.fromhex("08B000000000059603000000 0000".replace(" ", ""))):
        assert tap.send_and_receive(later) == (b"", 0x69FC)
    assert channel.transceive(CommandApdu(0x0C, 0xB0, 0, 0, ne=1))[1] == 0x6987


def test_dump_without_its_integrity_record_fails(card, anchors, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _, _, channel = card
    dump = dump_card(channel, credential(CardInfoKey.PIN, PIN))

    def write(relative: str, data: bytes) -> None:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(data)

    write_dump(dump, write)
    index = json.loads((tmp_path / "index.json").read_text())
    index["files"] = [f for f in index["files"] if f["path"] != "card_info/0003.bin"]
    (tmp_path / "index.json").write_text(json.dumps(index))
    loaded, digests = load_dump(lambda relative: (tmp_path / relative).read_bytes())
    failed = check_dump(loaded, digests, anchors, describe).failed
    assert "card_info DF31 (EF 0001): no integrity record (EF 0003) to check it against" in failed
    assert "card_info DF32 (EF 0002): no integrity record (EF 0003) to check it against" in failed


def test_no_secret_or_identity_in_reprs(card) -> None:  # type: ignore[no-untyped-def]
    _, _, channel = card
    secure = credential(CardInfoKey.COLLATION_A, NUMBER, secure=True)
    assert NUMBER not in repr(secure) and PIN not in repr(secure)
    dump = dump_card(channel, credential(CardInfoKey.PIN, PIN))
    assert NUMBER not in repr(dump) and "山田" not in repr(dump)


def test_a_symbolic_link_in_a_dump_is_refused_when_checked_locally(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`card check --from DIR` run locally (root, say) on a dump someone else made: a link
    to a file only the reader may read (card_info/0004.bin -> /etc/shadow) is not read;
    the decoders' errors would name its first bytes."""
    from tools.cli.card_diagnostics import dump_reader

    secret = tmp_path / "secret"
    secret.write_bytes(b"root:$y$...")
    dump = tmp_path / "dump"
    (dump / "card_info").mkdir(parents=True)
    (dump / "card_info" / "0004.bin").symlink_to(secret)
    (dump / "jpki").symlink_to(tmp_path)
    (dump / "card_info" / "0005.bin").write_bytes(b"\xff")
    read = dump_reader(dump)
    for relative in ("card_info/0004.bin", "jpki/secret"):
        with pytest.raises(CardDataError, match="symbolic link"):
            read(relative)
    assert read("card_info/0005.bin") == b"\xff"
