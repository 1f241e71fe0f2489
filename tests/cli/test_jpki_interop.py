"""JPKI through the CLI and through public tools: openssl verifies our certificates and
CMS signatures; OpenSC's own JPKI driver reads the emulated card and signs with it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from tools.rig.rig import reader_name

from ..conftest import juki
from .test_commands import issue, pin_file

OPENSC_MODULE = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"


def openssl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=check)


def test_certs_chain_and_openssl_verify(rig_home: Path, tmp_path: Path) -> None:
    serial = issue(rig_home, tmp_path)
    out = tmp_path / "certs"
    reports = json.loads(juki(rig_home, "card", "certs", "--out", str(out), "--with-sign",
                              "--pin-file", str(pin_file(tmp_path)), "--json").stdout)
    by_name = {r["name"]: r for r in reports}
    assert sorted(by_name) == ["auth", "auth_ca", "sign", "sign_ca"]
    assert by_name["auth"]["chain_ok"] and by_name["sign"]["chain_ok"]
    assert serial in by_name["auth"]["subject"]
    for leaf, ca in (("auth", "auth-ca"), ("sign", "sign-ca")):
        result = openssl("verify", "-CAfile", str(out / f"{ca}.pem"), str(out / f"{leaf}.pem"))
        assert result.stdout.strip().endswith("OK")
    sign = x509.load_pem_x509_certificate((out / "sign.pem").read_bytes())
    names = sign.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    other = {n.type_id.dotted_string: n.value for n in names if isinstance(n, x509.OtherName)}
    name = "鈴木　花子".encode()
    assert other["1.2.392.200149.8.5.5.1"] == b"\x0c" + bytes([len(name)]) + name  # UTF8String
    assert other["1.2.392.200149.8.5.5.4"] == b"\x0c\x0819920229"


def test_cms_signature_verifies_with_openssl(rig_home: Path, tmp_path: Path) -> None:
    issue(rig_home, tmp_path)
    juki(rig_home, "card", "certs", "--out", str(tmp_path / "certs"))
    document = tmp_path / "doc.txt"
    document.write_text("住民票の写しの交付請求\n")
    for key in ("auth", "sign"):
        signature = tmp_path / f"doc.{key}.p7s"
        juki(rig_home, "card", "sign", str(document), "--key", key, "--out", str(signature),
             "--pin-file", str(pin_file(tmp_path)))
        ca = tmp_path / "certs" / f"{key}-ca.pem"
        ok = openssl("cms", "-verify", "-binary", "-inform", "DER", "-in", str(signature),
                     "-content", str(document), "-CAfile", str(ca), "-purpose", "any",
                     "-out", os.devnull, check=False)
        assert ok.returncode == 0, ok.stderr
        tampered = tmp_path / "tampered.txt"
        tampered.write_text("住民票の写しの交付請求!\n")
        bad = openssl("cms", "-verify", "-binary", "-inform", "DER", "-in", str(signature),
                      "-content", str(tampered), "-CAfile", str(ca), "-purpose", "any",
                      "-out", os.devnull, check=False)
        assert bad.returncode != 0


def pkcs11_tool(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["pkcs11-tool", "--module", OPENSC_MODULE,
                           "--slot-description", reader_name(0), *args],
                          capture_output=True, text=True, timeout=120, check=False,
                          env=dict(os.environ, **(env or {})))


def test_opensc_jpki_driver_reads_and_signs(rig_home: Path, tmp_path: Path) -> None:
    issue(rig_home, tmp_path)
    listing = pkcs11_tool("--list-objects")
    assert listing.returncode == 0, listing.stderr
    for label in ("User Authentication Certificate", "User Authentication Certificate CA",
                  "Digital Signature Certificate CA"):
        assert f"label:      {label}\n" in listing.stdout
    cert_file, data, signature = tmp_path / "auth.der", tmp_path / "data", tmp_path / "sig"
    data.write_bytes(b"signed through OpenSC")
    read = pkcs11_tool("--read-object", "--type", "cert", "--id", "01",
                       "--output-file", str(cert_file))
    assert read.returncode == 0, read.stderr
    # the PIN reaches pkcs11-tool through its environment, not its argv
    signed = pkcs11_tool("--login", "--pin", "env:JPKI_AUTH_PIN", "--sign", "--id", "01",
                         "-m", "SHA256-RSA-PKCS", "--input-file", str(data),
                         "--output-file", str(signature), env={"JPKI_AUTH_PIN": "2468"})
    assert signed.returncode == 0, signed.stderr
    certificate = x509.load_der_x509_certificate(cert_file.read_bytes())
    certificate.public_key().verify(signature.read_bytes(), data.read_bytes(),  # type: ignore[union-attr, call-arg]
                                    padding.PKCS1v15(), hashes.SHA256())  # type: ignore[call-arg]
