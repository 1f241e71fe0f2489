"""The card surface through the station service: the request's photo is read by the
client (the service never opens a client's path), and `card face` writes its directory
on the client's side, as the operator, 0700."""

from __future__ import annotations

import json
import os
import pwd
import stat
from pathlib import Path

from PIL import Image

from tools.registry import new_record_code
from tools.resident.face import is_placeholder_photo
from tools.rig.service import OPERATOR_USER, Service, operator_file

from ..conftest import ROOT, juki
from ..operator_helpers import READER

YAMADA = ROOT / "fixtures" / "requests" / "resident-yamada.json"
CARD_PINS = "card_info=7319\njpki_auth=2468\njpki_sign=SIGN2026\ncollation_a=123456789018\n"


def test_photo_and_face_through_the_service(service: Service, rig_home: Path,
                                            tmp_path: Path) -> None:
    operator = pwd.getpwnam(OPERATOR_USER)
    photos = service.work / "photos"
    photos.mkdir(mode=0o700)
    Image.new("RGB", (300, 400), (120, 160, 90)).save(photos / "me.png", format="PNG")
    for path in (photos, photos / "me.png"):
        os.chown(path, operator.pw_uid, operator.pw_gid)
    request = json.loads(YAMADA.read_text(encoding="utf-8")) | {
        "resident_code": new_record_code(), "photo": "photos/me.png"}
    operator_file(service, "request.json", json.dumps(request, ensure_ascii=False), 0o644)
    operator_file(service, "pins.txt", CARD_PINS)
    juki(rig_home, "rig", "insert", "--slot", "0", "--state", str(tmp_path / "card.json"))
    service.client("issue", "resident", "request.json", "--reader", READER, "--pin-file",
                   "pins.txt", "--json")
    answer = json.loads(service.client(
        "card", "face", "--out", "face", "--with", "a", "--recipient", "NENKIN", "--purpose",
        "B1-57", "--reader", READER, "--pin-file", "pins.txt", "--json").stdout)
    out = service.work / "face"
    assert stat.S_IMODE(out.stat().st_mode) == 0o700 and out.stat().st_uid == operator.pw_uid
    photo = (out / "photo.jp2").read_bytes()
    assert photo[4:8] == b"jP  " and not is_placeholder_photo(photo)
    assert answer["placeholder_photo"] is False and (out / "number.png").stat().st_size > 0
    assert (out / "name.png").stat().st_uid == operator.pw_uid  # written by the client
