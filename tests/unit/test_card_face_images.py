"""The card-surface images (RC §5.2) are what they claim, and the request's photo is read
and checked like the request itself."""

from __future__ import annotations

import base64
import io
import json
import socket
import struct
from pathlib import Path

import pytest
from PIL import Image

from tools.errors import IssuanceError, RequestError
from tools.issuance import card_face_images as images
from tools.issuance.request import load_request, parse_request
from tools.resident import face
from tools.service.client import Client
from tools.service.protocol import Channel

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "requests"
GOOD = json.loads((FIXTURES / "resident-yamada.json").read_text(encoding="utf-8"))
PNG_MAGIC = bytes.fromhex("89504E470D0A1A0A")


def png_header(data: bytes) -> tuple[int, int, int, int]:
    """(width, height, bit depth, colour type) from the IHDR chunk."""
    assert data.startswith(PNG_MAGIC) and data[12:16] == b"IHDR"
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    return width, height, depth, colour


def black_pixels(data: bytes) -> int:
    image = Image.open(io.BytesIO(data))
    return image.histogram()[0]


def photo_file(tmp_path: Path, fmt: str = "JPEG", size: tuple[int, int] = (600, 800)) -> Path:
    image = Image.new("RGB", size, (200, 120, 60))
    for x in range(size[0] // 3, 2 * size[0] // 3):  # a dark band: a photo with content
        for y in range(0, size[1], 7):
            image.putpixel((x, y), (10, 10, 10))
    path = tmp_path / f"photo.{fmt.lower()}"
    image.save(path, format=fmt)
    return path


@pytest.mark.parametrize(("render", "text", "size"), [
    (images.name_image, "山田　太郎", images.NAME_SIZE),
    (images.address_image, "東京都千代田区霞が関二丁目1番2号", images.ADDRESS_SIZE),
    (images.number_image, "123456789018", images.NUMBER_SIZE),
    (images.security_code_image, "2285", images.CODE_SIZE),
])
def test_text_images_are_1_bit_greyscale_pngs_with_ink(render, text: str,  # type: ignore[no-untyped-def]
                                                       size: tuple[int, int]) -> None:
    data = render(text)
    assert png_header(data) == (*size, 1, 0)  # bit depth 1, colour type 0 (greyscale)
    reopened = Image.open(io.BytesIO(data))
    assert reopened.format == "PNG" and reopened.mode == "1" and reopened.size == size
    assert 0 < black_pixels(data) < size[0] * size[1] // 2  # rendered text, not blank, not solid
    assert render(text) == data  # deterministic: a re-issued face hashes the same


def test_different_text_renders_differently_and_long_text_still_fits() -> None:
    assert images.name_image("山田　太郎") != images.name_image("山田　花子")
    long_address = "北海道札幌市中央区北一条西二丁目一番地札幌市役所本庁舎十八階" * 2
    data = images.address_image(long_address)
    assert png_header(data)[:2] == images.ADDRESS_SIZE and black_pixels(data) > 0


def test_number_and_code_images_refuse_what_is_not_their_digits() -> None:
    with pytest.raises(IssuanceError):
        images.number_image("12345")
    with pytest.raises(IssuanceError):
        images.security_code_image("12a4")


def test_a_missing_font_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(images, "FONT_PATH", tmp_path / "ipag.ttf")
    with pytest.raises(IssuanceError, match=r"ipag\.ttf is missing.*fonts-ipafont-gothic"):
        images.name_image("山田")


def test_photo_is_greyscale_jpeg2000_in_a_jp2_container(tmp_path: Path) -> None:
    for fmt in ("JPEG", "PNG"):
        jp2 = images.photo_jp2(photo_file(tmp_path, fmt).read_bytes())
        assert jp2[4:8] == b"jP  " and len(jp2) <= images.PHOTO_MAX_BYTES
        reopened = Image.open(io.BytesIO(jp2))
        reopened.load()
        assert reopened.format == "JPEG2000" and reopened.mode == "L"
        assert reopened.size == images.PHOTO_SIZE
        assert not face.is_placeholder_photo(jp2)


def test_a_noisy_photo_is_compressed_until_it_fits(tmp_path: Path) -> None:
    noise = Image.frombytes("L", (900, 1200), bytes((i * 7919) % 251 for i in range(900 * 1200)))
    out = io.BytesIO()
    noise.save(out, format="PNG")
    jp2 = images.photo_jp2(out.getvalue())
    assert len(jp2) <= images.PHOTO_MAX_BYTES and jp2[4:8] == b"jP  "


def test_the_placeholder_is_recognised_and_nothing_else_is() -> None:
    placeholder = images.placeholder_photo()
    assert placeholder[4:8] == b"jP  " and placeholder == images.placeholder_photo()
    assert face.PLACEHOLDER_COMMENT == images.PLACEHOLDER_COMMENT
    assert face.is_placeholder_photo(placeholder)
    image = Image.open(io.BytesIO(placeholder))
    image.load()
    assert image.mode == "L" and image.size == images.PHOTO_SIZE
    for not_placeholder in (b"", b"\x00" * 64, PNG_MAGIC + b"\x00" * 64, placeholder[:40],
                            placeholder.replace(images.PLACEHOLDER_COMMENT, b"juki placeholder photo v2")):
        assert not face.is_placeholder_photo(not_placeholder)


def test_the_placeholder_mark_must_be_in_the_codestream_header() -> None:
    """The mark's text elsewhere (say, in the pixels' bytes or a trailing box) does not count."""
    real = images.photo_jp2(_png((50, 50)))
    smuggled = real + struct.pack(">I4s", 8 + len(images.PLACEHOLDER_COMMENT), b"xml ") \
        + images.PLACEHOLDER_COMMENT
    assert not face.is_placeholder_photo(smuggled)


def _png(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("L", size, 128).save(out, format="PNG")
    return out.getvalue()


def write_request(tmp_path: Path, **fields: object) -> Path:
    path = tmp_path / "request.json"
    path.write_text(json.dumps(GOOD | fields, ensure_ascii=False), encoding="utf-8")
    return path


def test_a_request_photo_is_read_relative_to_the_request_file(tmp_path: Path) -> None:
    photo = photo_file(tmp_path)
    request = load_request(write_request(tmp_path, photo=photo.name))
    assert request.photo == photo.read_bytes()
    assert load_request(write_request(tmp_path)).photo is None
    assert repr(request) == "IdentityRequest(<redacted>)"


@pytest.mark.parametrize(("make", "rule"), [
    (lambda d: None, "cannot read"),  # missing file
    (lambda d: (d / "photo.jpg").write_bytes(b"not an image at all"), "not a readable JPEG or PNG"),
    (lambda d: Image.new("L", (8, 8)).save(d / "photo.jpg", format="GIF"), "JPEG or PNG"),
    (lambda d: (d / "photo.jpg").write_bytes(b"\xff" * (images.PHOTO_INPUT_MAX_BYTES + 1)),
     "too large"),
    (lambda d: (d / "photo.jpg").write_bytes(photo_file(d).read_bytes()[:300]),
     "not a readable JPEG or PNG"),  # truncated
])
def test_bad_photos_are_refused_naming_the_field(tmp_path: Path, make, rule: str) -> None:  # type: ignore[no-untyped-def]
    make(tmp_path)
    with pytest.raises(RequestError) as info:
        load_request(write_request(tmp_path, photo="photo.jpg"))
    assert info.value.field == "photo" and rule in info.value.rule


def test_a_photo_with_too_many_pixels_is_refused(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "PHOTO_INPUT_MAX_PIXELS", 1000)
    photo_file(tmp_path, size=(100, 100))
    with pytest.raises(RequestError, match="too large"):
        load_request(write_request(tmp_path, photo="photo.jpeg"))


def test_a_photo_field_without_a_request_file_or_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(RequestError, match="request file"):
        parse_request(GOOD | {"photo": "face.jpg"})
    with pytest.raises(RequestError, match="path of a JPEG or PNG"):
        parse_request(GOOD | {"photo": 7}, lambda _p: b"")


def test_the_client_relays_the_photo_its_request_names_and_nothing_beside_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the station service the photo is read by the client (the service never
    opens a client's path); the client reads it because the request on its command line
    names it, and still refuses any other file in that directory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "photos").mkdir()
    photo = photo_file(tmp_path / "photos")
    (tmp_path / "secret").write_text("not yours")
    write_request(tmp_path, photo="photos/" + photo.name)
    client = Client(Channel(socket.socketpair()[0]), ["issue", "resident", "request.json"])
    read = client.answer({"kind": "read", "path": str(tmp_path / "photos" / photo.name)})
    assert base64.b64decode(read["data"]) == photo.read_bytes()
    for other in (tmp_path / "secret", tmp_path / "photos"):
        assert "refuses" in client.answer({"kind": "read", "path": str(other)})["error"]
    written = client.answer({"kind": "write", "path": str(photo), "data": ""})
    assert "refuses" in written["error"] and photo.stat().st_size > 0  # read, never written


def test_a_private_directory_is_new_and_0700_locally_and_through_the_client(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tools.cli.common import LOCAL_TERMINAL

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("os.umask", lambda _mask: 0)  # not relied upon either way
    LOCAL_TERMINAL.make_dir(tmp_path / "local" / "face", private=True)
    assert (tmp_path / "local" / "face").stat().st_mode & 0o777 == 0o700
    with pytest.raises(FileExistsError):
        LOCAL_TERMINAL.make_dir(tmp_path / "local" / "face", private=True)
    client = Client(Channel(socket.socketpair()[0]), ["card", "face", "--out", "face"])
    assert client.answer({"kind": "mkdir", "path": "face", "private": True}) == {}
    assert (tmp_path / "face").stat().st_mode & 0o777 == 0o700
    again = client.answer({"kind": "mkdir", "path": "face", "private": True})
    assert "File exists" in again["error"]


def test_an_issuance_without_the_font_fails_before_any_card_io(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    from tools.issuance import resident_card

    monkeypatch.setattr(images, "FONT_PATH", tmp_path / "ipag.ttf")
    monkeypatch.setattr(resident_card.StationSigners, "current", lambda _hsm: None)
    touched: list[str] = []

    class Untouchable:
        def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
            touched.append(name)
            raise AssertionError(f"{name} used")

    with pytest.raises(IssuanceError, match="fonts-ipafont-gothic"):
        resident_card.issue_resident_card(Untouchable(), None, Untouchable(),  # type: ignore[arg-type]
                                          parse_request(GOOD), None)  # type: ignore[arg-type]
    assert touched == []  # neither the card nor the registry
