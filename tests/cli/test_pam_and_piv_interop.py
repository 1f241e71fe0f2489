"""The PAM hook through Debian's pamtester and pam_exec, and OpenSC's PIV driver reading
and signing with our emulated operator card, all through pcscd."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from ..conftest import juki
from ..operator_helpers import READER, enroll, insert_operator_card, operator_station, station_registry

PAM_DIR = Path("/etc/pam.d")
OPENSC_MODULE = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"
JUKI = Path(sys.executable).parent / "juki"


@pytest.fixture
def pam_service(rig_home: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A PAM service whose auth is `juki pam-auth` through pam_exec (expose_authtok),
    removed afterwards. Needs root, as in CI."""
    assert shutil.which("pamtester"), "pamtester is not installed (make deps)"
    home = operator_station(rig_home, tmp_path / "station")
    name = f"juki-test-{secrets.token_hex(4)}"
    service = PAM_DIR / name
    service.write_text(
        f"auth required pam_exec.so expose_authtok quiet {JUKI} --home {home} pam-auth "
        "--reader 0 --timeout 1\naccount required pam_permit.so\n")
    yield name, home
    service.unlink()


def pamtester(service: str, user: str, pin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["pamtester", service, user, "authenticate"], input=pin + "\n",
                          capture_output=True, text=True, timeout=60, check=False)


def test_pam_login_succeeds_only_for_the_right_card_pin_and_active_operator(
        pam_service, rig_home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    service, home = pam_service
    hanako, taro = tmp_path / "hanako.json", tmp_path / "taro.json"
    enroll(home, rig_home, taro, "op-taro", "verify", pin="707070", unix_user="taro")
    enroll(home, rig_home, hanako, "op-hanako", "verify", pin="808080", unix_user="hanako")

    ok = pamtester(service, "hanako", "808080")
    assert ok.returncode == 0 and "successfully authenticated" in ok.stdout + ok.stderr

    assert pamtester(service, "hanako", "000000").returncode != 0  # wrong PIN
    assert pamtester(service, "nobody", "808080").returncode != 0  # user mapped to no operator
    insert_operator_card(rig_home, taro)
    assert pamtester(service, "hanako", "808080").returncode != 0  # another operator's card
    assert pamtester(service, "taro", "707070").returncode == 0

    registry = station_registry(home)
    registry.set_operator_status("op-taro", "suspended", "test", None)
    assert pamtester(service, "taro", "707070").returncode != 0  # suspended operator
    registry.set_operator_status("op-taro", "active", None, None)
    assert pamtester(service, "taro", "707070").returncode == 0

    juki(rig_home, "rig", "remove", "--slot", "0")
    assert pamtester(service, "taro", "707070").returncode != 0  # no card
    failures = [e["event"] for e in registry.operator_events("op-hanako")]
    assert failures.count("login") == 1


def test_pam_hook_reads_the_pin_as_pam_exec_writes_it(rig_home: Path, tmp_path: Path) -> None:
    """pam_exec writes the token followed by a NUL byte; the hook takes PAM_USER."""
    home = operator_station(rig_home, tmp_path / "station")
    card = tmp_path / "op.json"
    enroll(home, rig_home, card, "op-nul", "verify", pin="919191", unix_user="nul")
    environment = {"PAM_USER": "nul", "PAM_TYPE": "auth", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([str(JUKI), "--home", str(home), "pam-auth", "--reader", READER],
                            input=b"919191\x00", capture_output=True, env=environment,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    result = subprocess.run([str(JUKI), "--home", str(home), "pam-auth", "--reader", READER],
                            input=b"919191\x00", capture_output=True,
                            env={"PATH": "/usr/bin:/bin"}, timeout=60, check=False)
    assert result.returncode == 7 and b"PAM_USER" in result.stderr


def pkcs11_tool(*args: str, pin: str | None = None) -> subprocess.CompletedProcess[bytes]:
    environment = dict(os.environ)
    extra: list[str] = []
    if pin is not None:
        environment["JUKI_TEST_PIV_PIN"] = pin
        extra = ["--login", "--pin", "env:JUKI_TEST_PIV_PIN"]
    return subprocess.run(["pkcs11-tool", "--module", OPENSC_MODULE, "--slot-description",
                           READER, *extra, *args], capture_output=True, env=environment,
                          timeout=120, check=False)


@pytest.mark.parametrize("algorithm", ["p256", "rsa2048"])
def test_opensc_piv_driver_lists_and_signs(rig_home: Path, tmp_path: Path, algorithm: str) -> None:
    home = operator_station(rig_home, tmp_path / "station")
    card = tmp_path / "op.json"
    enroll(home, rig_home, card, "op-opensc", "verify", pin="246810", algorithm=algorithm)
    listed = pkcs11_tool("--list-objects")
    assert listed.returncode == 0, listed.stderr
    text = listed.stdout.decode()
    assert "Certificate for PIV Authentication" in text and "CN=op-opensc" in text

    der = tmp_path / "cert.der"
    read = pkcs11_tool("--read-object", "--type", "cert", "--id", "01", "-o", str(der))
    assert read.returncode == 0, read.stderr
    certificate = x509.load_der_x509_certificate(der.read_bytes())
    registry = station_registry(home)
    assert registry.operator("op-opensc").certificate == der.read_bytes()  # type: ignore[union-attr]

    message = tmp_path / "message"
    message.write_bytes(b"signed through OpenSC's PIV driver " + secrets.token_bytes(8))
    signature = tmp_path / "signature"
    mechanism = "ECDSA-SHA256" if algorithm == "p256" else "SHA256-RSA-PKCS"
    extra = ["--signature-format", "openssl"] if algorithm == "p256" else []
    signed = pkcs11_tool("--sign", "--id", "01", "-m", mechanism, *extra, "-i", str(message),
                         "-o", str(signature), pin="246810")
    assert signed.returncode == 0, signed.stderr
    public = certificate.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        public.verify(signature.read_bytes(), message.read_bytes(), padding.PKCS1v15(),
                      hashes.SHA256())
    else:
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(signature.read_bytes(), message.read_bytes(), ec.ECDSA(hashes.SHA256()))
    wrong = pkcs11_tool("--sign", "--id", "01", "-m", mechanism, *extra, "-i", str(message),
                        "-o", str(signature), pin="999999")
    assert wrong.returncode != 0
