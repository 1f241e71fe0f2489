"""`juki card face` on issued cards: a request with a photo and one without, the three
credentials, a tampered face refused, an existing output directory refused."""

from __future__ import annotations

import datetime as dt
import json
import stat
from pathlib import Path

from PIL import Image

from cardlib.collation import collation_b, wareki_yymmdd
from cardlib.constants import Aid, SurfaceFile
from cardlib.emulator.state import StateFile
from tools.registry import new_record_code

from ..conftest import ROOT, juki
from .test_commands import READ_FOR, insert_blank, pin_file

YAMADA = ROOT / "fixtures" / "requests" / "resident-yamada.json"
NUMBER = "123456789018"  # the Yamada request's individual number


def issue_face(home: Path, tmp_path: Path, photo: bool) -> dict:
    """Issue the Yamada request (own record code; with a photo beside the request if
    asked) onto a blank card in slot 0; the issuance answer."""
    raw = json.loads(YAMADA.read_text(encoding="utf-8")) | {"resident_code": new_record_code()}
    if photo:
        image = Image.new("RGB", (480, 640), (230, 220, 200))
        for x in range(160, 320):
            for y in range(120, 360, 3):
                image.putpixel((x, y), (40, 30, 20))
        image.save(tmp_path / "portrait.jpg", format="JPEG")
        raw["photo"] = "portrait.jpg"
    request = tmp_path / "request.json"
    request.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    insert_blank(home, tmp_path)
    return json.loads(juki(home, "issue", "resident", str(request), "--pin-file",
                           str(pin_file(tmp_path)), "--json").stdout)


def face(home: Path, out: Path, credential: str, secret: str, check: int = 0):  # type: ignore[no-untyped-def]
    return juki(home, "card", "face", "--out", str(out), "--with", credential, *READ_FOR,
                "--json", input=f"{secret}\n", check=check)


def test_face_with_a_photo_and_a(rig_home: Path, tmp_path: Path) -> None:
    issued = issue_face(rig_home, tmp_path, photo=True)
    out = tmp_path / "face"
    answer = json.loads(face(rig_home, out, "a", NUMBER).stdout)
    assert answer["card_serial"] == issued["card_serial"]
    assert isinstance(answer["provision_entry"], int)  # recorded before the files
    assert answer["birth_date"] == "1985-04-12" and answer["sex"] == "1"
    assert answer["expiry"] == issued["expiry"] and answer["expiry_signed"] is False
    assert answer["placeholder_photo"] is False and answer["anchor"].startswith("7000023/")
    assert [c["name"] for c in answer["checks"]] == ["cv_chain", "face", "rendered_number",
                                                     "card_key", "presence"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert sorted(p.name for p in out.iterdir()) == sorted(answer["files"]) == [
        "address.png", "code.png", "face.json", "name.png", "number.png", "photo.jp2",
        "photo.png"]
    assert (out / "photo.jp2").read_bytes()[4:8] == b"jP  "
    for name in ("name.png", "address.png", "code.png", "number.png"):
        assert Image.open(out / name).mode == "1"
    photo = Image.open(out / "photo.png")
    assert photo.mode == "L" and photo.size == (240, 320)
    written = json.loads((out / "face.json").read_text(encoding="utf-8"))
    assert written["birth_date"] == "1985-04-12" and written["checks"] == answer["checks"]
    again = face(rig_home, out, "a", NUMBER, check=2)  # never written into silently
    assert "must be a new directory" in again.stdout + again.stderr


def test_b_reads_the_face_without_the_number_and_dob_the_birth_date_only(
        rig_home: Path, tmp_path: Path) -> None:
    issued = issue_face(rig_home, tmp_path, photo=False)
    expiry = dt.date.fromisoformat(issued["expiry"])
    b = collation_b(dt.date(1985, 4, 12), expiry, issued["card_face"]["security_code"])
    answer = json.loads(face(rig_home, tmp_path / "b", "b", b).stdout)
    assert "number.png" not in answer["files"] and answer["placeholder_photo"] is True
    assert not (tmp_path / "b" / "number.png").exists()
    dob = json.loads(face(rig_home, tmp_path / "dob", "dob",
                          wareki_yymmdd(dt.date(1985, 4, 12))).stdout)
    assert dob["birth_date"] == "1985-04-12" and "sex" not in dob
    assert dob["files"] == ["face.json"] and dob["card_serial"] == issued["card_serial"]


def test_one_byte_of_the_photo_changed_is_refused_and_nothing_written(
        rig_home: Path, tmp_path: Path) -> None:
    issue_face(rig_home, tmp_path, photo=True)
    juki(rig_home, "rig", "remove", "--slot", "0")
    state = StateFile(tmp_path / "card.json")
    card = state.load()
    ef = card.apps[Aid.CARD_SURFACE.hex()].files[f"{SurfaceFile.FACE:04X}"]
    content = bytearray(ef.content)
    content[content.index(b"jP  ") + 300] ^= 0x01
    ef.data = bytes(content).hex()
    state.save(card)
    juki(rig_home, "rig", "insert", "--slot", "0", "--state", str(state.path))
    out = tmp_path / "tampered"
    result = face(rig_home, out, "a", NUMBER, check=1)
    error = json.loads(result.stdout)["error"]
    assert "face" in json.dumps(error, ensure_ascii=False) and "DF28" in error["message"]
    assert list(out.iterdir()) == []  # the directory was made first; nothing released into it
