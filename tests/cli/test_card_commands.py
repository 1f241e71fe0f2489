"""`juki card info / read --what / pin` on issued cards, and a tampered card-info AP."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from cardlib.constants import Aid, CardInfoFile
from cardlib.emulator.state import StateFile
from cardlib.records import FourInfo, encode_four_info

from ..conftest import juki
from .test_commands import PIN, READ_FOR, issue


def test_card_info_spends_no_try(rig_home: Path, tmp_path: Path) -> None:
    serial = issue(rig_home, tmp_path)
    juki(rig_home, "card", "read", *READ_FOR, "--json", input="0000\n", check=3)  # one wrong PIN
    for _ in range(3):
        info = json.loads(juki(rig_home, "card", "info", "--json").stdout)
        assert info["pins"]["card_info"] == {"tries_left": 2, "verified": False, "blocked": False}
    assert info["pins"]["jpki_auth"]["tries_left"] == 3
    assert info["pins"]["jpki_sign"]["tries_left"] == 5
    assert info["card_serial"] == serial and info["municipality_code"] == "271004"
    assert info["token"] == "JPKIAPICCTOKEN2"
    assert {"COMMON", "CARD_INFO", "JPKI", "RESIDENT_REGISTRY"} <= set(info["applications"])
    status = json.loads(juki(rig_home, "card", "pin", "status", "--json").stdout)
    assert status == info["pins"]


def test_read_what(rig_home: Path, tmp_path: Path) -> None:
    issue(rig_home, tmp_path)
    number = json.loads(juki(rig_home, "card", "read", *READ_FOR, "--what", "number", "--json",
                             input=f"{PIN}\n").stdout)
    assert number["individual_number"] is None  # the Suzuki request carries no number
    assert number["integrity"]["checked"] == ["DF31"]
    everything = json.loads(juki(rig_home, "card", "read", *READ_FOR, "--what", "all", "--json",
                                 input=f"{PIN}\n").stdout)
    assert everything["name"] == "鈴木　花子" and everything["integrity"]["checked"] == ["DF31", "DF32"]


def issue_with_tampered_attributes(rig_home: Path, tmp_path: Path) -> None:
    """A card issued in slot 0, then its 4 information (EF 0002) rewritten behind the
    integrity record's back, and put back in the reader."""
    issue(rig_home, tmp_path)
    juki(rig_home, "rig", "remove", "--slot", "0")
    state = StateFile(tmp_path / "card.json")
    card = state.load()
    forged = encode_four_info(FourInfo("偽物　太郎", "どこか", dt.date(1990, 1, 1), "1"))
    card.apps[Aid.CARD_INFO.hex()].files[f"{CardInfoFile.ATTRIBUTES:04X}"].data = forged.hex()
    state.save(card)
    juki(rig_home, "rig", "insert", "--slot", "0", "--state", str(state.path))


def test_tampered_attributes_are_reported_not_released(rig_home: Path, tmp_path: Path) -> None:
    issue_with_tampered_attributes(rig_home, tmp_path)
    result = juki(rig_home, "card", "read", *READ_FOR, "--json", input=f"{PIN}\n", check=3)
    error = json.loads(result.stdout)["error"]
    assert "integrity record does not match: 4 information (EF 0002, DF32)" in error["message"]
    assert "偽物" not in result.stdout + result.stderr  # nothing of it was released


def test_pin_change(rig_home: Path, tmp_path: Path) -> None:
    issue(rig_home, tmp_path)
    pins = tmp_path / "change.txt"
    pins.write_text(f"card_info={PIN}\ncard_info_new=8080\n")
    pins.chmod(0o600)
    juki(rig_home, "card", "pin", "change", "card_info", "--pin-file", str(pins))
    juki(rig_home, "card", "read", *READ_FOR, "--json", input=f"{PIN}\n", check=3)
    assert json.loads(juki(rig_home, "card", "read", *READ_FOR, "--json", input="8080\n").stdout)["name"]
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("jpki_sign=NOTIT1\njpki_sign_new=NEWPIN9\n")
    wrong.chmod(0o600)
    result = juki(rig_home, "card", "pin", "change", "jpki_sign", "--pin-file", str(wrong), "--json",
                  check=3)
    assert json.loads(result.stdout)["error"]["tries_left"] == 4

