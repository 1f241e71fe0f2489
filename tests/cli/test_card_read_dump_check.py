"""`juki card read --with pin|a|b [--secure]`, `juki card dump`, `juki card check [--from]`
on a card issued through the rig (the real card's layout; our CV hierarchy)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from ..conftest import juki
from .rig_cards import issue_own_yamada_card

PIN = "7319"
READ_FOR = ("--recipient", "NENKIN", "--purpose", "B1-57")


@pytest.fixture
def card(rig_home: Path, tmp_path: Path) -> dict[str, object]:
    """A Yamada card with an individual number of its own in slot 0, and a credentials
    file naming its PIN, 照合番号A and 照合番号B."""
    issued = issue_own_yamada_card(rig_home, tmp_path, tmp_path / "card.json", PIN)
    creds = tmp_path / "creds.txt"
    creds.write_text(f"card_info={PIN}\ncollation_a={issued['number']}\n"
                     f"collation_b={issued['b']}\n")
    os.chmod(creds, 0o600)
    return {"serial": issued["serial"], "number": issued["number"], "creds": creds}


def read(home: Path, card: dict[str, object], *args: str, check: int = 0) -> dict:  # type: ignore[type-arg]
    result = juki(home, "card", "read", *READ_FOR, "--pin-file", str(card["creds"]), "--json",
                  *args, check=check)
    assert str(card["number"]) not in result.stderr
    return json.loads(result.stdout)


def test_read_with_each_credential(rig_home: Path, card: dict[str, object]) -> None:
    everything = read(rig_home, card, "--what", "all")
    assert everything["name"] == "山田　太郎" and everything["individual_number"] == card["number"]
    assert everything["integrity"]["checked"] == ["DF31", "DF32"]
    assert everything["integrity"]["anchor"].startswith("7000033/")
    with_a = read(rig_home, card, "--with", "a")
    assert with_a["individual_number"] == card["number"] and "name" not in with_a
    assert with_a["integrity"]["checked"] == ["DF31"] and with_a["integrity"]["credential"] == \
        "collation_a"
    with_b = read(rig_home, card, "--with", "b")
    assert with_b["name"] == "山田　太郎" and "individual_number" not in with_b
    refused = juki(rig_home, "card", "read", *READ_FOR, "--with", "a", "--what", "identity",
                   "--pin-file", str(card["creds"]), check=2)
    assert "does not open" in refused.stderr


def test_read_secure(rig_home: Path, card: dict[str, object]) -> None:
    with_pin = read(rig_home, card, "--secure", "--what", "all")
    assert with_pin["individual_number"] == card["number"]
    assert with_pin["integrity"]["secure_messaging"] is True
    with_a = read(rig_home, card, "--secure", "--with", "a")
    assert with_a["individual_number"] == card["number"]
    assert with_a["integrity"]["secure_messaging"] is True
    with_b = read(rig_home, card, "--secure", "--with", "b")
    assert with_b["address"] == "東京都千代田区霞が関二丁目1番2号"


def test_dump_then_check_from_and_a_tampered_dump(rig_home: Path, card: dict[str, object],
                                                  tmp_path: Path) -> None:
    free = tmp_path / "free"
    out = json.loads(juki(rig_home, "card", "dump", "--out", str(free), "--json").stdout)
    assert out["identity_fields"] == [] and out["provision_entry"] is None
    assert stat.S_IMODE(free.stat().st_mode) == 0o700
    assert not (free / "card_info" / "0001.bin").exists()
    assert (free / "card_info" / "0004.bin").stat().st_size == 568
    refused = {(r["ap"], r["id"]): r["sw"] for r in out["refused"]}
    assert refused[("card_info", "0001")] == "6982"
    juki(rig_home, "card", "dump", "--out", str(free), check=2)  # an existing directory

    full = tmp_path / "full"
    out = json.loads(juki(rig_home, "card", "dump", "--out", str(full), "--with", "pin",
                          *READ_FOR, "--pin-file", str(card["creds"]), "--json").stdout)
    assert {"individual_number", "name", "address"} <= set(out["identity_fields"])
    assert isinstance(out["provision_entry"], int)
    number_file = (full / "card_info" / "0001.bin").read_bytes()
    assert len(number_file) == 17 and number_file.endswith(b"\xff\xff")
    index = json.loads((full / "index.json").read_text())
    assert any(f["path"] == "mf/00F8.bin" for f in index["files"])

    checked = json.loads(juki(rig_home, "card", "check", "--from", str(full), "--json").stdout)
    assert checked["ok"] is True, checked["failed"]
    passed = {f["check"] for f in checked["findings"] if f["ok"]}
    assert {"card_info integrity record DF33", "card_info DF31 (EF 0001)",
            "card_info DF32 (EF 0002)", "card_info signed AP key (EF 0007)",
            "MF CV chain 00F8/7F21", "jpki auth certificate (EF 000A) under EF 000B",
            "surface CV certificate (EF 0004)"} <= passed

    attributes = full / "card_info" / "0002.bin"
    attributes.write_bytes(attributes.read_bytes().replace("山田".encode(), "川田".encode()))
    result = juki(rig_home, "card", "check", "--from", str(full), "--json", check=1)
    failed = json.loads(result.stdout)["failed"]
    assert any("DF32" in f for f in failed) and any("card_info/0002.bin" in f for f in failed)


def test_live_check(rig_home: Path, card: dict[str, object]) -> None:
    report = json.loads(juki(rig_home, "card", "check", "--json").stdout)
    assert report["ok"] is True, report["failed"]
    card_info = report["applications"]["card_info"]
    assert card_info["select"] == "9000"
    assert card_info["keys"]["0011"]["tries_left"] == 3
    assert card_info["keys"]["0012"]["blocked"] is True
    assert card_info["files"]["0001"]["read"] == "6982" and card_info["files"]["0004"]["readable"]
    chains = {f["check"]: f for f in report["findings"]}
    assert chains["card_info CV certificate (EF 0004)"]["detail"].startswith("chains to 7000033/")
    photo = json.loads(juki(rig_home, "card", "check", "--with", "b", "--pin-file",
                            str(card["creds"]), "--json", check=1).stdout)
    assert any("placeholder" in f for f in photo["failed"])  # the request had no photo
    again = json.loads(juki(rig_home, "card", "check", "--json").stdout)
    assert again["applications"]["card_info"]["keys"]["0015"]["tries_left"] == 10
    text = juki(rig_home, "card", "check").stdout
    assert "ok   card_info CV certificate (EF 0004): chains to 7000033/" in text
    assert "card_info  SELECT 9000; readable now: 0004, 0005" in text
