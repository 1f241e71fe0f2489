"""``juki demo``: the walking skeleton end to end, through the real CLI.

Each step runs the ``juki`` command a user would type (shown with ``$``) against a
fresh station home: rig up -> hsm init -> issue -> verify -> read -> counterfeit
rejected -> rig down.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import click

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "requests" / "resident-yamada.json"
DEMO_PIN = "4821"  # a demo card's PIN; it travels by a mode-600 file, never argv


def _juki(home: Path, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    shown = " ".join(args)
    click.secho(f"$ juki {shown}", fg="cyan")
    result = subprocess.run([sys.executable, "-m", "tools", "--home", str(home), *args],
                            capture_output=True, text=True, check=False)
    click.echo(result.stdout.rstrip())
    if result.stderr.strip():
        click.echo(result.stderr.rstrip(), err=True)
    if result.returncode != expect:
        raise click.ClickException(
            f"step `juki {shown}` exited {result.returncode}, expected {expect}")
    return result


def _step(text: str) -> None:
    click.secho(f"\n== {text}", bold=True)


def run_demo(workdir: Path | None, keep_rig: bool) -> int:
    home = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="juki-demo-"))
    home.mkdir(parents=True, exist_ok=True)
    pin_file = home / "demo-pins.txt"
    fd = os.open(pin_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(f"card_info={DEMO_PIN}\n")
    click.echo(f"station home: {home}")
    try:
        _step("1. bring up the rig: SoftHSM token, pcscd with vpcd, one blank emulated card")
        _juki(home, "rig", "up", "--blank", "1")
        _step("2. create the resident issuing CA inside the token (key never leaves it)")
        _juki(home, "hsm", "init")
        _juki(home, "hsm", "status")
        _step("3. which reader holds what (detected by AID, not ATR)")
        _juki(home, "readers")
        _step("4. issue the blank card from a request; key pair generated on the card")
        _juki(home, "issue", "resident", str(FIXTURE), "--pin-file", str(pin_file))
        _step("5. verify: token challenge -> INTERNAL AUTHENTICATE -> chain -> registry")
        _juki(home, "verify")
        _step("6. read the 4 information after the card-info PIN")
        _juki(home, "card", "read", "--pin-file", str(pin_file))
        _step("7. a counterfeit: same data, different key -> must be rejected")
        cards = home / "cards"
        _juki(home, "rig", "remove", "--slot", "0")
        _juki(home, "emulator", "counterfeit", "--from", str(cards / "card-00.json"),
              "--to", str(cards / "counterfeit.json"))
        _juki(home, "rig", "insert", "--slot", "0", "--state", str(cards / "counterfeit.json"))
        _juki(home, "verify", expect=1)
        _step("8. the genuine card again")
        _juki(home, "rig", "insert", "--slot", "0", "--state", str(cards / "card-00.json"))
        _juki(home, "verify")
    finally:
        if not keep_rig:
            _step("bring the rig down (only the processes it started)")
            _juki(home, "rig", "down")
    click.secho("\ndemo finished: issue -> verify -> read -> counterfeit rejected", fg="green")
    return 0
