"""``juki demo``: the station end to end, through the real CLI.

Each step runs the ``juki`` command a user would type (shown with ``$``) against a
fresh station home (``WORKDIR/station``) beside a test rig with a home and test token of
its own (``WORKDIR``; rig commands are shown with ``--home $RIG``): the station's config
names the rig's token as a production station names its HSM, and the rig never touches
the station home, which goes to operator mode at step 13.
rig up -> hsm init -> issue -> verify -> full profile read ->
counterfeit rejected -> suspend/resume -> record-code change -> reissue -> moving with
the card (move-out, move-in, the new address read back, the old signature certificate
refused by `openssl verify -crl_check`, a PIN reset, 付随情報) -> operators
(enrol on PIV cards, operator mode, login, a scope denial) -> the provision record
(disclosure report; a database edit caught by `juki audit verify`) -> rig down.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import click

from .demo_moves import moving_story

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "requests" / "resident-yamada.json"
DEMO_PINS = {"card_info": "4821", "jpki_auth": "5932", "jpki_sign": "JUKI2026",  # mode-600 file
             "operator_pin": "672839", "operator_puk": "90817263"}


@dataclass
class Narrator:
    home: Path  # the station
    rig_home: Path  # the test rig: its own home and test token
    to_stderr: bool

    def say(self, text: str, *, fg: str | None = None, bold: bool | None = None) -> None:
        click.secho(text, err=self.to_stderr, fg=fg, bold=bold)

    def step(self, text: str) -> None:
        self.say(f"\n== {text}", bold=True)

    def juki(self, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
        """A station command."""
        return self._run(self.home, " ".join(args), args, expect)

    def rig(self, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
        """A command of the test rig, on the rig's own home."""
        return self._run(self.rig_home, "--home $RIG " + " ".join(args), args, expect)

    def _run(self, home: Path, shown: str, args: tuple[str, ...],
             expect: int) -> subprocess.CompletedProcess[str]:
        self.say(f"$ juki {shown}", fg="cyan")
        result = subprocess.run([sys.executable, "-m", "tools", "--home", str(home), *args],
                                capture_output=True, text=True, check=False)
        self.say(result.stdout.rstrip())
        if result.stderr.strip():
            click.echo(result.stderr.rstrip(), err=True)
        if result.returncode != expect:
            raise click.ClickException(
                f"step `juki {shown}` exited {result.returncode}, expected {expect}")
        return result


def _write_pin_file(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.writelines(f"{name}={value}\n" for name, value in DEMO_PINS.items())


def run_demo(workdir: Path | None, keep_rig: bool, narrate_to_stderr: bool = False) -> dict:
    """Run the narrated demo; returns a summary (raises ClickException on a failed step)."""
    home = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="juki-demo-"))
    home.mkdir(parents=True, exist_ok=True)
    pin_file = home / "demo-pins.txt"
    _write_pin_file(pin_file)
    cards = home / "cards"
    n = Narrator(home / "station", home, narrate_to_stderr)
    n.say(f"station home: {n.home}\nrig home ($RIG): {home}")
    try:
        serial = _issue_and_read(n, home, pin_file)
        counterfeit = _counterfeit(n, cards, pin_file)
        old_code, changed, reissued = _life_cycle(n, home, serial, pin_file)
        moved = moving_story(n, home, pin_file, reissued, changed["new_code"],
                             _collation_b(reissued))
        denied = _operators(n, cards, pin_file)
        tampered = _audit(n, pin_file, cards, old_code)
        served = _service(n)
    finally:
        if not keep_rig:
            n.step("bring the rig down (only the processes it started)")
            n.rig("rig", "down")
    return {
        "workdir": str(home),
        "card_serial": serial,
        "new_record_code": changed["new_code"],
        "reissued_card_serial": reissued["card_serial"],
        "moved": moved,
        "genuine_card_verified": True,
        "counterfeit_rejected_by": [c["name"] for c in counterfeit["checks"] if not c["ok"]],
        "operators_enrolled": ["admin01", "clerk01"],
        "scope_denial": denied,
        "disclosure_report": tampered["report"],
        "tampered_entry_detected": tampered["first_bad_index"],
        "station_service": served,
        "rig_left_running": keep_rig,
    }


def _issue_and_read(n: Narrator, home: Path, pin_file: Path) -> str:
    """Steps 1-6b: rig, token keys, readers, issuance, verification, every read; the serial."""
    n.step("1. bring up the rig: its own SoftHSM test token, pcscd with vpcd, one blank "
           "emulated card; the station's config names the rig's token")
    n.rig("rig", "up", "--blank", "1")
    _attach_station(n)
    n.step("2. the issuing CA and card master keys inside the token (they never leave it)")
    n.juki("hsm", "init")
    n.juki("hsm", "status")
    n.step("3. which reader holds what (detected by AID, not ATR)")
    n.juki("readers")
    n.step("4. issue the blank card from a request; key pair generated on the card")
    issued = n.juki("issue", "resident", str(FIXTURE), "--pin-file", str(pin_file), "--json")
    serial = json.loads(issued.stdout)["card_serial"]
    n.step("5. verify from the card alone (EF 0004 CV chain to a trust anchor -> PIN -> EF 0007 "
           "-> 80 2A 00 00 over a token challenge), then the registry for our own card")
    n.juki("trust", "list")
    n.juki("verify", "--pin-file", str(pin_file))
    n.juki("verify", "--offline", "--pin-file", str(pin_file))
    n.step("6. the full profile: applications, token, PIN tries (no try spent)")
    n.juki("card", "info")
    n.juki("card", "read", "--what", "all", "--recipient", "NENKIN", "--purpose", "B1-57",
           "--pin-file", str(pin_file))
    n.juki("card", "certs", "--out", str(home / "certs"))
    document = home / "request.txt"
    document.write_text("住民票の写しの交付を請求します。\n", encoding="utf-8")
    n.juki("card", "sign", str(document), "--key", "sign", "--pin-file", str(pin_file))
    n.step("6b. the resident record code: only over SCP03 with keys derived in the token")
    n.juki("card", "code", "--recipient", "MUNI-TAX", "--purpose", "B4-3", "--pin-file",
           str(pin_file))
    return serial


def _collation_b(issued: dict) -> str:
    """照合番号B of an issued card: birth date, expiry year, the security code of its face."""
    import datetime as dt

    from cardlib.collation import collation_b

    birth = dt.date.fromisoformat(json.loads(FIXTURE.read_text(encoding="utf-8"))["birth_date"])
    return collation_b(birth, dt.date.fromisoformat(issued["expiry"]),
                       issued["card_face"]["security_code"])


def _attach_station(n: Narrator) -> None:
    """The station's config names the rig's test token (as a production station's names
    its HSM); nothing else of the rig's home is the station's."""
    from ..station.home import StationHome
    from .rig import Rig

    station = StationHome(n.home)
    station.write_settings({"hsm": Rig(StationHome(n.rig_home)).token_settings()})
    n.say(f"({station.config_file}: [hsm] names the rig's test token)")


def _counterfeit(n: Narrator, cards: Path, pin_file: Path) -> dict:
    """Steps 7-8: a forged clone is rejected, the genuine card verifies again."""
    n.step("7. a counterfeit: same data, different key -> must be rejected")
    n.rig("rig", "remove", "--slot", "0")
    n.rig("emulator", "counterfeit", "--from", str(cards / "card-00.json"),
          "--to", str(cards / "counterfeit.json"))
    n.rig("rig", "insert", "--slot", "0", "--state", str(cards / "counterfeit.json"))
    counterfeit = json.loads(n.juki("verify", "--json", "--pin-file", str(pin_file),
                                    expect=1).stdout)
    n.juki("verify", "--offline", "--pin-file", str(pin_file), expect=1)  # the card alone too
    n.step("7b. reading it is refused before any PIN: the card must prove itself first")
    n.juki("card", "read", "--recipient", "NENKIN", "--purpose", "B1-57", "--pin-file",
           str(pin_file), expect=1)
    n.step("8. the genuine card again")
    n.rig("rig", "insert", "--slot", "0", "--state", str(cards / "card-00.json"))
    n.juki("verify", "--pin-file", str(pin_file))
    return counterfeit


def _life_cycle(n: Narrator, home: Path, serial: str, pin_file: Path) -> tuple[str, dict, dict]:
    """Steps 9-11: suspend and resume, a new record code, reissue onto a new card."""
    n.step("9. suspend: the card stops verifying; resume: it verifies again")
    n.juki("card", "suspend", serial, "--reason", "reported missing at the counter")
    n.juki("verify", "--pin-file", str(pin_file), expect=1)
    n.juki("card", "resume", serial)
    n.juki("verify", "--pin-file", str(pin_file))
    n.step("10. the resident asks for a new record code: card and registry, over SCP03")
    old_code = json.loads(FIXTURE.read_text(encoding="utf-8"))["resident_code"]
    changed = json.loads(n.juki("resident", "change-code", "--code", old_code, "--reason",
                                "本人の請求", "--json").stdout)
    n.juki("card", "code", "--recipient", "MUNI-TAX", "--purpose", "B4-3", "--pin-file",
           str(pin_file))
    n.step("11. reissue: a new card for the same resident; the old one is superseded")
    request = home / "reissue-request.json"
    request.write_text(json.dumps(json.loads(FIXTURE.read_text(encoding="utf-8"))
                                  | {"resident_code": changed["new_code"]},
                                  ensure_ascii=False), encoding="utf-8")
    n.rig("rig", "insert", "--slot", "1")
    reissued = json.loads(n.juki("card", "reissue", serial, str(request), "--pin-file",
                                 str(pin_file), "--json").stdout)
    n.juki("verify", "--reader", reissued["reader"], "--pin-file", str(pin_file))
    n.juki("card", "show", serial)
    return old_code, changed, reissued


def _operators(n: Narrator, cards: Path, pin_file: Path) -> str:
    """Operators on PIV cards, operator mode, login, a scope denial, logout."""
    n.step("12. enrol two operators on blank PIV cards (keys made on the card, certified by "
           "the operator CA in the token)")
    for operator_id, name, scopes in (("clerk01", "田中 太郎", "verify"),
                                      ("admin01", "佐藤 花子",
                                       "operator-admin,issue,revoke,verify,audit-read")):
        n.rig("rig", "insert", "--slot", "1", "--kind", "operator",
              "--state", str(cards / f"{operator_id}.json"))
        n.juki("operator", "enroll", "--id", operator_id, "--name", name, "--municipality",
               "131016", "--scopes", scopes, "--reader", "1", "--pin-file", str(pin_file))
    n.step("13. operator mode: with an operator-admin enrolled, every command needs a session "
           "with its scope (only root's word keeps a station open)")
    n.juki("station", "status")
    n.juki("verify", expect=7)
    n.step("14. the clerk logs in: PIN on the card, token challenge signed by key 9A")
    n.rig("rig", "insert", "--slot", "1", "--state", str(cards / "clerk01.json"))
    n.juki("login", "--reader", "1", "--pin-file", str(pin_file))
    n.juki("whoami")
    n.rig("rig", "insert", "--slot", "0", "--state", str(cards / "card-01.json"))  # reissued
    n.juki("verify", "--reader", "0", "--pin-file", str(pin_file))
    n.step("15. the clerk has no read-code scope: denied, and the denial is recorded")
    denied = n.juki("card", "code", "--recipient", "MUNI-TAX", "--purpose", "B4-3", "--reader",
                    "0", expect=7).stderr.strip()
    n.juki("logout")
    n.juki("whoami", expect=7)
    n.step("16. the administrator reviews the denials")
    n.rig("rig", "insert", "--slot", "1", "--state", str(cards / "admin01.json"))
    n.juki("login", "--reader", "1", "--pin-file", str(pin_file))
    n.juki("operator", "denials")
    n.juki("operator", "list")
    return denied


def _audit(n: Narrator, pin_file: Path, cards: Path, old_code: str) -> dict:
    """The provision record: a disclosure report, then a database edit caught."""
    n.step("17. the resident asks what was provided about them (under their old code too)")
    n.juki("audit", "recipients")
    n.juki("audit", "disclose", "--code", old_code)
    report = n.home / "disclosure.html"
    n.juki("audit", "disclose", "--code", old_code, "--format", "html", "--out", str(report))
    n.juki("audit", "verify")
    n.step("18. someone edits one row of the provision log in the database ...")
    from ..registry import Registry
    from ..station.home import StationHome

    edit = ("UPDATE provision_log SET entry = replace(entry, 'NENKIN', 'MUNI-TAX') WHERE idx = "
            "(SELECT MIN(idx) FROM provision_log WHERE kind = 'provision')")
    registry = Registry(StationHome(n.home).registry_target())
    with registry.transaction() as db:
        db.execute(edit)
    registry.close()
    n.say(edit)
    n.step("19. ... and `juki audit verify` names that entry")
    verdict = json.loads(n.juki("audit", "verify", "--json", expect=1).stdout)
    n.juki("logout")
    return {"report": str(report), "first_bad_index": verdict["first_bad_index"]}


def _service(n: Narrator) -> dict:
    """The station service: the station's secrets belong to the service user `juki`; an
    operator's account (`juki-op`) is only its client."""
    from .service import OPERATOR_USER, SERVICE_USER, start_service

    n.step(f"20. the station service: `juki station serve` as user {SERVICE_USER} holds a "
           "station home (a copy of the rig's token); the operator account "
           f"{OPERATOR_USER} is its client over a Unix socket")
    try:
        service = start_service(n.rig_home)
    except AssertionError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        outcomes = {}
        for shown, args, expect in (
                ("juki hsm status", ("hsm", "status"), 0),
                (f"cat {service.home.secrets_dir / 'token.pin'}", None, 1),
                ("juki --home /tmp hsm status", ("--home", "/tmp", "hsm", "status"), 2)):
            n.say(f"{OPERATOR_USER}$ {shown}", fg="cyan")
            if args is None:
                result = subprocess.run(["setpriv", f"--reuid={OPERATOR_USER}",
                                         f"--regid={OPERATOR_USER}", "--init-groups", "cat",
                                         str(service.home.secrets_dir / "token.pin")],
                                        capture_output=True, text=True, check=False)
            else:
                result = service.client(*args, check=None)
            n.say((result.stdout + result.stderr).rstrip())
            if result.returncode != expect:
                raise click.ClickException(f"`{shown}` as {OPERATOR_USER} exited "
                                           f"{result.returncode}, expected {expect}")
            outcomes[shown.split(" ", 1)[0] + (" --home" if "--home" in shown else "")] = \
                result.returncode
    finally:
        service.stop()
    return outcomes

