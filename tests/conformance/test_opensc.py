"""OpenSC against our emulated cards through pcscd: opensc-tool sees the readers and the
real ATR; `pkcs11-tool --test --login` completes with no error on the JPKI token of a
resident card (OpenSC's jpki driver, matched by the ATR 3B E0 00 FF 81 31 FE 45 14) and
on a PIV operator card; `--list-objects` lists both.

The PINs are the rig's test PINs; they reach pkcs11-tool through its environment
(``--pin env:NAME``), so not even a test PIN is on a command line."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ..operator_helpers import READER as OPERATOR_READER
from ..operator_helpers import enroll, operator_station
from .conftest import JPKI_AUTH_PIN, IssuedResident

OPENSC_MODULE = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"
OPERATOR_PIN = "246810"


def run(*command: str, pin: str | None = None) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ)
    if pin is not None:
        environment["JUKI_TEST_TOKEN_PIN"] = pin  # a test PIN of the rig, kept off argv
    return subprocess.run(list(command), capture_output=True, text=True, timeout=300,
                          env=environment, check=False)


def pkcs11_tool(reader: str, *args: str, pin: str | None = None) -> subprocess.CompletedProcess[str]:
    login = ["--login", "--pin", "env:JUKI_TEST_TOKEN_PIN"] if pin is not None else []
    return run("pkcs11-tool", "--module", OPENSC_MODULE, "--slot-description", reader,
               *login, *args, pin=pin)


def no_error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    text = result.stdout + result.stderr
    return [line for line in text.splitlines()  # pkcs11-tool's summary "No errors" is not one
            if ("error" in line.lower() or "failed" in line.lower())
            and line.strip() != "No errors"]


def test_opensc_tool_lists_readers_and_the_real_atr(resident: IssuedResident) -> None:
    readers = run("opensc-tool", "--list-readers")
    assert readers.returncode == 0 and resident.reader in readers.stdout, readers.stdout
    atr = run("opensc-tool", "--reader", resident.reader, "--atr")
    assert atr.returncode == 0, atr.stderr
    assert atr.stdout.strip().lower() == "3b:e0:00:ff:81:31:fe:45:14"
    name = run("opensc-tool", "--reader", resident.reader, "--name")
    assert name.stdout.strip() == "jpki", name.stdout + name.stderr  # OpenSC's jpki driver


def test_pkcs11_tool_lists_the_jpki_objects(resident: IssuedResident) -> None:
    listing = pkcs11_tool(resident.reader, "--list-objects")
    assert listing.returncode == 0, listing.stderr
    for label in ("User Authentication Certificate", "User Authentication Certificate CA",
                  "Digital Signature Certificate CA"):
        assert f"label:      {label}\n" in listing.stdout


def test_pkcs11_tool_test_login_on_the_jpki_token(resident: IssuedResident) -> None:
    result = pkcs11_tool(resident.reader, "--test", pin=JPKI_AUTH_PIN)
    assert result.returncode == 0, result.stdout + result.stderr
    assert no_error_lines(result) == [], result.stdout + result.stderr
    assert "No errors" in result.stdout, result.stdout


@pytest.fixture(scope="module")
def operator_card(rig_home: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("opensc-operator")
    home = operator_station(rig_home, root / "station")
    enroll(home, rig_home, root / "op.json", "op-conformance", "verify", pin=OPERATOR_PIN,
           algorithm="rsa2048")
    return OPERATOR_READER


def test_pkcs11_tool_lists_the_piv_objects(operator_card: str) -> None:
    listing = pkcs11_tool(operator_card, "--list-objects")
    assert listing.returncode == 0, listing.stderr
    assert "Certificate for PIV Authentication" in listing.stdout
    assert "CN=op-conformance" in listing.stdout


def test_pkcs11_tool_test_login_on_the_piv_operator_card(operator_card: str) -> None:
    result = pkcs11_tool(operator_card, "--test", pin=OPERATOR_PIN)
    assert result.returncode == 0, result.stdout + result.stderr
    assert no_error_lines(result) == [], result.stdout + result.stderr
    assert "No errors" in result.stdout, result.stdout
