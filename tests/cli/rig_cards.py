"""Cards issued through the rig for the CLI tests."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from cardlib.checkdigits import individual_number_check_digit
from tools.registry import new_record_code

from ..conftest import ROOT, juki
from ..operator_helpers import operator_station

YAMADA = ROOT / "fixtures" / "requests" / "resident-yamada.json"


def issue_own_yamada_card(home: Path, tmp_path: Path, state: Path, pin: str,
                          rig_home: Path | None = None) -> dict[str, str]:
    """Insert a blank card (emulator state ``state``) in slot 0 and issue it to Yamada
    with a record code and an individual number of its own and ``pin`` as its PIN: the
    card's serial, individual number and 照合番号B. ``rig_home``: the rig's home when the
    station ``home`` is another one."""
    first11 = f"{secrets.randbelow(10**11):011d}"
    number = first11 + str(individual_number_check_digit(first11))
    request = json.loads(YAMADA.read_text(encoding="utf-8")) | {
        "resident_code": new_record_code(), "individual_number": number}
    request_path = tmp_path / "request.json"
    request_path.write_text(json.dumps(request, ensure_ascii=False), encoding="utf-8")
    juki(rig_home or home, "rig", "insert", "--slot", "0", "--state", str(state))
    pins = tmp_path / "pins.txt"
    pins.write_text(f"card_info={pin}\njpki_auth=2468\njpki_sign=SIGN2026\n")
    os.chmod(pins, 0o600)
    issued = json.loads(juki(home, "issue", "resident", str(request_path), "--pin-file",
                             str(pins), "--json").stdout)
    # 照合番号B: born 1985-04-12 = 昭和60 -> 600412, the expiry year, the security code
    b = f"600412{issued['expiry'][:4]}{issued['card_face']['security_code']}"
    return {"serial": issued["card_serial"], "number": number, "b": b}


def station_with_yamada_card(rig_home: Path, root: Path, pin: str) -> dict:
    """A station of its own at ``root/station`` with Yamada's card (emulator state
    ``root/card.json``, ``pin`` as its PIN) issued in slot 0: ``home``, ``rig``, ``root``,
    ``state`` and what ``issue_own_yamada_card`` answers."""
    home = operator_station(rig_home, root / "station")
    card = issue_own_yamada_card(home, root, root / "card.json", pin, rig_home=rig_home)
    return {"home": home, "rig": rig_home, "root": root, "state": root / "card.json", **card}


def dead_owner() -> str:
    """An operation owner (host:pid) on this host whose process has exited: what a
    SIGKILLed command leaves in the journal."""
    import socket
    import subprocess

    process = subprocess.Popen(["true"])
    process.wait()
    return f"{socket.gethostname()}:{process.pid}"
