"""The card surface AP (RC §5) end to end in process: personalised by
``tools.issuance.surface`` on an emulated blank card, read back by ``SurfaceApSession``
and checked by ``tools.resident.face.read_face``; the attacks on it fail."""

from __future__ import annotations

import datetime as dt
import io
import json
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import NoDigestInfo
from PIL import Image

from cardlib import surface_records as sr
from cardlib.apps.surface import SurfaceApSession
from cardlib.collation import collation_b, wareki_yymmdd
from cardlib.constants import Aid, SurfaceFile
from cardlib.cv_certificate import KeyId, cv_body, make_cv_certificate
from cardlib.errors import CardError, InvalidPinError, PinBlockedError
from tools.issuance.request import load_request
from tools.issuance.surface import personalise_surface_ap
from tools.resident.face import FaceNotGenuineError, is_placeholder_photo, read_face

from ..helpers import card_channel, personalising

ROOT = Path(__file__).resolve().parents[2]
EXPIRY = dt.date(2036, 4, 12)
CODE = "2285"
KEY = rsa.generate_private_key(65537, 2048)


class SoftwareCvSigner:
    """What ``hsm.cv_hierarchy.CvSigner`` does in the token, in software (unit tier)."""

    def __init__(self, number: str, private: rsa.RSAPrivateKey | None = None) -> None:
        self.key_id = KeyId.of(number, "001")
        self.private = private or rsa.generate_private_key(65537, 2048)

    def public_key(self) -> rsa.RSAPublicKey:
        return self.private.public_key()

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message, padding.PKCS1v15(), hashes.SHA256())

    def sign_padded(self, payload: bytes) -> bytes:
        return self.private.sign(payload, padding.PKCS1v15(), NoDigestInfo())

    def certify(self, holder: KeyId, key: rsa.RSAPublicKey) -> bytes:
        body = cv_body(self.key_id, holder, key)
        return make_cv_certificate(self.key_id, holder, key, self.sign(body)).encode()


class OnceChallenges:
    def __init__(self) -> None:
        self.issued: set[bytes] = set()

    def issue(self, size: int = 32) -> bytes:
        import secrets

        challenge = secrets.token_bytes(size)
        self.issued.add(challenge)
        return challenge

    def redeem(self, challenge: bytes) -> bool:
        if challenge in self.issued:
            self.issued.discard(challenge)
            return True
        return False


CA = SoftwareCvSigner("7000023", KEY)
SIGNER = SoftwareCvSigner("7000021")
CERTIFICATE = CA.certify(SIGNER.key_id, SIGNER.public_key())
ANCHORS = {CA.key_id.raw: CA.public_key()}


def request_with_photo(tmp_path: Path, photo: bool):  # type: ignore[no-untyped-def]
    raw = json.loads((ROOT / "fixtures" / "requests" / "resident-yamada.json").read_text("utf-8"))
    if photo:
        Image.new("RGB", (300, 400), (90, 140, 200)).save(tmp_path / "me.png")
        raw["photo"] = "me.png"
    (tmp_path / "request.json").write_text(json.dumps(raw, ensure_ascii=False), "utf-8")
    return load_request(tmp_path / "request.json")


@pytest.fixture
def issued(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A card whose surface AP was personalised (the rest of the card stays blank)."""
    request = request_with_photo(tmp_path, photo=True)
    card, channel = card_channel()
    personalise_surface_ap(personalising(channel), SIGNER, CERTIFICATE, request, EXPIRY, CODE,
                           request.individual_number)
    card.power_on()
    return card, channel, request


def test_the_face_reads_back_and_proves_itself_with_a(issued) -> None:  # type: ignore[no-untyped-def]
    _card, channel, request = issued
    reading = read_face(SurfaceApSession(channel), "a", request.individual_number, ANCHORS,
                        OnceChallenges())
    assert reading.birth_date == request.birth_date and reading.sex == request.sex
    assert reading.expiry == EXPIRY and reading.anchor == "7000023/001"
    assert [name for name, _ in reading.checks] == ["cv_chain", "face", "rendered_number",
                                                    "card_key", "presence"]
    assert reading.photo_jp2[4:8] == b"jP  " and not is_placeholder_photo(reading.photo_jp2)
    for png in (reading.name_png, reading.address_png, reading.code_png, reading.number_png):
        assert Image.open(io.BytesIO(png)).mode == "1"
    assert set(reading.files()) == {"name.png", "address.png", "photo.jp2", "code.png",
                                    "number.png"}


def test_b_reads_the_face_but_not_the_rendered_number(issued) -> None:  # type: ignore[no-untyped-def]
    _card, channel, request = issued
    b = collation_b(request.birth_date, EXPIRY, CODE)
    reading = read_face(SurfaceApSession(channel), "b", b, ANCHORS, OnceChallenges())
    assert reading.number_png is None and "number.png" not in reading.files()
    session = SurfaceApSession(channel)  # B is verified; EF 0005 stays closed (RC §5.1)
    with pytest.raises(CardError):
        session.read_file(SurfaceFile.RENDERED_NUMBER)


def test_the_birth_date_key_opens_the_age_record_only(issued) -> None:  # type: ignore[no-untyped-def]
    _card, channel, request = issued
    reading = read_face(SurfaceApSession(channel), "dob", wareki_yymmdd(request.birth_date),
                        ANCHORS, OnceChallenges())
    assert reading.birth_date == request.birth_date and reading.files() == {}
    assert reading.fields == ["birth_date"]
    with pytest.raises(CardError):
        SurfaceApSession(channel).read_file(SurfaceFile.FACE)


def test_nothing_is_readable_without_a_key_but_the_certificate_and_basic_data(issued) -> None:  # type: ignore[no-untyped-def]
    _card, channel, request = issued
    session = SurfaceApSession(channel)
    session.select()
    for fid in (SurfaceFile.AGE_RECORD, SurfaceFile.FACE, SurfaceFile.RENDERED_NUMBER):
        with pytest.raises(CardError):
            session.read_file(fid)
    info = sr.decode_basic_info(session.read_file(SurfaceFile.BASIC_INFO))
    assert info.municipality == request.municipality_code[:5] and info.version == b"\x00"
    assert session.read_file(SurfaceFile.CV_CERTIFICATE) == CERTIFICATE


def test_a_wrong_secret_spends_a_try_and_releases_nothing(issued) -> None:  # type: ignore[no-untyped-def]
    _card, channel, _request = issued
    with pytest.raises(InvalidPinError) as info:
        read_face(SurfaceApSession(channel), "a", "123456789019", ANCHORS, OnceChallenges())
    assert info.value.tries_left == 9


def test_a_card_of_another_hierarchy_is_refused_before_any_secret(issued) -> None:  # type: ignore[no-untyped-def]
    _card, channel, request = issued
    other = SoftwareCvSigner("7000023")  # same key ID, another key: not our anchor
    with pytest.raises(FaceNotGenuineError) as info:
        read_face(SurfaceApSession(channel), "a", request.individual_number,
                  {other.key_id.raw: other.public_key()}, OnceChallenges())
    assert info.value.failed[0][0] == "cv_chain"
    assert SurfaceApSession(channel).key_status(SurfaceFile.COLLATION_A).tries_left == 10


def test_a_surface_certificate_from_an_anchor_of_another_role_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Surface EF 0004 issued by a trusted card-info CA (x000033), all else consistent:
    the surface chain must start at a surface CA (x000023); refused before any secret."""
    request = request_with_photo(tmp_path, photo=False)
    wrong = SoftwareCvSigner("7000033", KEY)
    card, channel = card_channel()
    personalise_surface_ap(personalising(channel), SIGNER,
                           wrong.certify(SIGNER.key_id, SIGNER.public_key()), request, EXPIRY,
                           CODE, request.individual_number)
    card.power_on()
    with pytest.raises(FaceNotGenuineError) as info:
        read_face(SurfaceApSession(channel), "a", request.individual_number,
                  {wrong.key_id.raw: wrong.public_key()}, OnceChallenges())
    assert info.value.failed[0][0] == "cv_chain" and "not a surface CA" in info.value.failed[0][1]
    assert SurfaceApSession(channel).key_status(SurfaceFile.COLLATION_A).tries_left == 10


def _tampered(card, fid: SurfaceFile, change) -> None:  # type: ignore[no-untyped-def]
    ef = card.state.apps[Aid.CARD_SURFACE.hex()].files[f"{fid:04X}"]
    ef.data = change(ef.content).hex()


def test_one_byte_of_the_photo_changed_is_refused(issued) -> None:  # type: ignore[no-untyped-def]
    card, channel, request = issued

    def flip(content: bytes) -> bytes:
        at = content.index(b"jP  ") + 200  # inside the photo's codestream
        return content[:at] + bytes((content[at] ^ 0x01,)) + content[at + 1:]

    _tampered(card, SurfaceFile.FACE, flip)
    with pytest.raises(FaceNotGenuineError) as info:
        read_face(SurfaceApSession(channel), "a", request.individual_number, ANCHORS,
                  OnceChallenges())
    assert info.value.failed[0][0] == "face"


def test_a_copied_face_on_a_card_with_another_key_fails_the_presence_proof(issued, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A counterfeit: every file of a genuine card copied onto a card whose 001A is its
    own key. The records verify (they are genuine); the challenge does not."""
    card, _channel, request = issued
    counterfeit, counterfeit_channel = card_channel()
    personalise_surface_ap(personalising(counterfeit_channel), SIGNER, CERTIFICATE,
                           request_with_photo(tmp_path, photo=False), EXPIRY, CODE,
                           request.individual_number)
    genuine_files = card.state.apps[Aid.CARD_SURFACE.hex()].files
    for fid, ef in counterfeit.state.apps[Aid.CARD_SURFACE.hex()].files.items():
        ef.data = genuine_files[fid].data
    counterfeit.power_on()
    with pytest.raises(FaceNotGenuineError) as info:
        read_face(SurfaceApSession(counterfeit_channel), "a", request.individual_number,
                  ANCHORS, OnceChallenges())
    assert info.value.failed[0][0] == "presence"


def test_without_a_photo_the_placeholder_is_written_and_flagged(tmp_path: Path) -> None:
    request = request_with_photo(tmp_path, photo=False)
    card, channel = card_channel()
    personalise_surface_ap(personalising(channel), SIGNER, CERTIFICATE, request, EXPIRY, CODE,
                           None)
    card.power_on()
    b = collation_b(request.birth_date, EXPIRY, CODE)
    reading = read_face(SurfaceApSession(channel), "b", b, ANCHORS, OnceChallenges())
    assert is_placeholder_photo(reading.photo_jp2)
    assert reading.as_json()["placeholder_photo"] is True
    with pytest.raises(PinBlockedError):  # no individual number: 照合番号A was never set (6984)
        SurfaceApSession(channel).present(SurfaceFile.COLLATION_A, "123456789018")


def test_the_signed_payload_is_the_three_digests(issued) -> None:  # type: ignore[no-untyped-def]
    _card, channel, request = issued
    session = SurfaceApSession(channel)
    session.select()
    session.present(SurfaceFile.COLLATION_A, request.individual_number)
    face = sr.decode_face(session.read_file(SurfaceFile.FACE))
    payload = SIGNER.public_key().recover_data_from_signature(face.signature, padding.PKCS1v15(),
                                                              None)
    assert payload[:19] == bytes.fromhex("3071300D060960864801650304020105000460")
    assert len(payload) == 19 + 96 and payload == sr.face_signed_payload(face)
    # DF29 (expiry) is not covered (RC §5.2): face.json says so ("expiry_signed": false)
    assert sr.verify_face_signature(replace(face, expiry=dt.date(2099, 1, 1), objects=()),
                                    SIGNER.public_key())
    assert not sr.verify_face_signature(replace(face, sex="2", objects=()), SIGNER.public_key())


def test_a_replayed_presence_signature_is_refused(issued) -> None:  # type: ignore[no-untyped-def]
    """A relay that recorded a genuine card's answer to one challenge replays it: every
    read asks a fresh token challenge, so the old signature does not verify."""
    _card, channel, request = issued
    recorded: list[bytes] = []

    class Recording(SurfaceApSession):
        def presence_signature(self, challenge: bytes) -> bytes:
            if recorded:
                return recorded[0]
            recorded.append(super().presence_signature(challenge))
            return recorded[0]

    read_face(Recording(channel), "a", request.individual_number, ANCHORS, OnceChallenges())
    with pytest.raises(FaceNotGenuineError) as info:
        read_face(Recording(channel), "a", request.individual_number, ANCHORS, OnceChallenges())
    assert info.value.failed[0][0] == "presence"
