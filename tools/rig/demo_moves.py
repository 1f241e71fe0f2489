"""The demo's moving story (issue 13): the resident of the reissued card moves from
千代田区 to 横浜市中区 with the card (特例転出・特例転入), the new address is read back
from the card, the old signature certificate is refused by ``openssl verify
-crl_check`` against the published CRL while the new one passes, the signature password
is reset at the counter, and the resident's 付随情報 comes out of the 操作履歴."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path
from typing import Protocol

import click


class Narrator(Protocol):
    """What the story needs of ``demo.Narrator``."""

    def say(self, text: str, *, fg: str | None = None, bold: bool | None = None) -> None: ...
    def step(self, text: str) -> None: ...
    def juki(self, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]: ...

NEW_MUNICIPALITY = "141003"  # 横浜市中区 (check digit valid)
NEW_ADDRESS = "神奈川県横浜市中区本町一丁目1番地"
NEW_SIGN_PIN = "MOVED2026"


def _pin_lines(path: Path, values: dict[str, str]) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.writelines(f"{name}={value}\n" for name, value in values.items())
    return path


def _openssl_verify(n: Narrator, ca: Path, crl: Path, certificate: Path, expect_ok: bool) -> str:
    """``openssl verify -crl_check`` as a relying party outside the station runs it."""
    args = ["openssl", "verify", "-crl_check", "-CAfile", str(ca), "-CRLfile", str(crl),
            str(certificate)]
    n.say("$ " + " ".join(args), fg="cyan")
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    said = (result.stdout + result.stderr).strip()
    n.say(said)
    if (result.returncode == 0) != expect_ok:
        raise click.ClickException(f"openssl verify of {certificate.name} exited "
                                   f"{result.returncode}, expected {'0' if expect_ok else 'non-zero'}")
    return said


def moving_story(n: Narrator, work: Path, pin_file: Path, reissued: dict, code: str,
                 collation_b: str) -> dict:
    """Steps 11b–11g on the reissued card (``reissued``: the reissue's JSON answer)."""
    reader, today = reissued["reader"], dt.date.today().isoformat()
    n.step(f"11b. 特例転出: at the old municipality the resident reports the move to "
           f"{NEW_MUNICIPALITY}; the card stays valid")
    n.juki("resident", "move-out", "--code", code, "--to", NEW_MUNICIPALITY, "--date", today,
           "--reason", "転居")
    before = work / "certs-before-move"
    n.juki("card", "certs", "--reader", reader, "--with-sign", "--out", str(before),
           "--pin-file", str(pin_file))
    n.step("11c. 特例転入 at the new municipality with the card and its PIN: the card proves "
           "itself, the 4 information and municipality are rewritten over SCP03, the integrity "
           "record re-signed in the token, a new signature key made on the card")
    n.juki("resident", "move-in", "--address", NEW_ADDRESS, "--municipality", NEW_MUNICIPALITY,
           "--date", today, "--reader", reader, "--pin-file", str(pin_file))
    n.step("11d. the new address, read back from the card (a recorded provision)")
    n.juki("card", "read", "--reader", reader, "--recipient", "NENKIN", "--purpose", "B1-57",
           "--pin-file", str(pin_file))
    n.step("11e. CRLs for relying parties: the old signature certificate is revoked "
           "(affiliationChanged), the new one is good")
    crls, after = work / "crl", work / "certs-after-move"
    n.juki("crl", "publish", "--out", str(crls))
    n.juki("card", "certs", "--reader", reader, "--with-sign", "--out", str(after),
           "--pin-file", str(pin_file))
    crl = crls / "resident-sign-ca-v1.crl.pem"
    refused = _openssl_verify(n, after / "sign-ca.pem", crl, before / "sign.pem", expect_ok=False)
    _openssl_verify(n, after / "sign-ca.pem", crl, after / "sign.pem", expect_ok=True)
    n.step("11f. the resident forgot the signature password: the operator checks a document, "
           "the card proves itself with 照合番号B from its face, the resident types a new one; "
           "reset over SCP03 with token-derived keys (no PIN the station knows)")
    reset_pins = _pin_lines(work / "reset-pins.txt", {"collation_b": collation_b,
                                                     "jpki_sign_new": NEW_SIGN_PIN})
    n.juki("card", "pin", "reset", "--pin", "jpki-sign", "--reason", "失念",
           "--identity-document", "運転免許証", "--reader", reader, "--pin-file", str(reset_pins))
    document = work / "moved.txt"
    document.write_text("転入届の写しを請求します。\n", encoding="utf-8")
    new_pins = _pin_lines(work / "new-sign-pin.txt", {"jpki_sign": NEW_SIGN_PIN})
    n.juki("card", "sign", str(document), "--key", "sign", "--reader", reader, "--pin-file",
           str(new_pins))
    n.step("11g. 付随情報: the resident sees when and why their 4 information changed, from the "
           "操作履歴 in the tamper-evident log; the counter's events with operator and scope")
    n.juki("audit", "self", "--code", code, "--reader", reader, "--pin-file", str(pin_file))
    n.juki("audit", "events", "--card", reissued["card_serial"])
    return {"moved_to": NEW_MUNICIPALITY, "old_signature_certificate_refused": refused}
