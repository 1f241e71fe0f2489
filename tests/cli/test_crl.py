"""CRLs for relying parties outside the station (issue 13 §5) on the rig: the auth
certificate read by OpenSC and by `juki card certs`, `juki crl publish`, `openssl verify
-crl_check` before and after a revocation, certificateHold while suspended, and
`juki verify --offline --ca --crl` as a relying party without token or registry."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from cardlib.cv_certificate import KeyId
from hsm.cv_hierarchy import station_anchors
from hsm.roles import KeyRole
from hsm.signer import TokenRsaSigner
from tools.station.home import StationHome

from ..conftest import juki
from .test_commands import PIN, issue, pin_file
from .test_jpki_interop import openssl, pkcs11_tool

AUTH_CRL = "resident-issuing-ca-v1.crl"
SIGN_CRL = "resident-sign-ca-v1.crl"


def publish(home: Path, out: Path) -> dict[str, dict]:  # type: ignore[type-arg]
    published = json.loads(juki(home, "crl", "publish", "--out", str(out), "--json").stdout)
    return {f"{c['role']}-v{c['version']}.crl": c for c in published["crls"]}


def crl_of(out: Path, name: str) -> x509.CertificateRevocationList:
    return x509.load_der_x509_crl((out / name).read_bytes())


def openssl_verify(ca: Path, crl: Path, cert: Path) -> subprocess.CompletedProcess[str]:
    return openssl("verify", "-crl_check", "-CAfile", str(ca), "-CRLfile", str(crl), str(cert),
                   check=False)


def card_certs(home: Path, tmp_path: Path, out: Path) -> dict[str, x509.Certificate]:
    juki(home, "card", "certs", "--out", str(out), "--with-sign", "--pin-file",
         str(pin_file(tmp_path)))
    return {name: x509.load_pem_x509_certificate((out / f"{name}.pem").read_bytes())
            for name in ("auth", "auth-ca", "sign", "sign-ca")}


def test_crl_publish_openssl_and_opensc(rig_home: Path, tmp_path: Path) -> None:
    serial = issue(rig_home, tmp_path)
    certs = card_certs(rig_home, tmp_path, tmp_path / "certs")
    auth = certs["auth"]
    # OpenSC's JPKI driver reads the same auth certificate (ID 01) off the card
    read = pkcs11_tool("--read-object", "--type", "cert", "--id", "01",
                       "--output-file", str(tmp_path / "opensc-auth.der"))
    assert read.returncode == 0, read.stderr
    opensc = x509.load_der_x509_certificate((tmp_path / "opensc-auth.der").read_bytes())
    assert opensc == auth
    (tmp_path / "opensc-auth.pem").write_bytes(opensc.public_bytes(serialization.Encoding.PEM))
    # the two CAs are distinct keys; each certificate names its own CA's CRL
    assert certs["auth-ca"].subject != certs["sign-ca"].subject
    assert "Juki Resident Signature CA" in certs["sign-ca"].subject.rfc4514_string()
    for name, crl in (("auth", AUTH_CRL), ("sign", SIGN_CRL)):
        points = certs[name].extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        assert [p.full_name[0].value for p in points] == [f"http://crl.juki.invalid/{crl}"]

    out = tmp_path / "crls"
    first = publish(rig_home, out)
    assert {AUTH_CRL, SIGN_CRL, "operator-ca-v1.crl"} <= set(first)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        n for name in first for n in (name, name + ".pem"))
    auth_crl_pem = out / (AUTH_CRL + ".pem")
    for cert in (tmp_path / "certs" / "auth.pem", tmp_path / "opensc-auth.pem"):
        good = openssl_verify(tmp_path / "certs" / "auth-ca.pem", auth_crl_pem, cert)
        assert good.returncode == 0 and good.stdout.strip().endswith("OK"), good.stdout + good.stderr

    juki(rig_home, "card", "revoke", serial, "--reason", "lost")
    second = publish(rig_home, out)
    for name in (AUTH_CRL, SIGN_CRL):
        assert second[name]["number"] > first[name]["number"]
        assert crl_of(out, name).extensions.get_extension_for_class(
            x509.CRLNumber).value.crl_number == second[name]["number"]
    for cert in (tmp_path / "certs" / "auth.pem", tmp_path / "opensc-auth.pem"):
        bad = openssl_verify(tmp_path / "certs" / "auth-ca.pem", auth_crl_pem, cert)
        assert bad.returncode != 0 and "certificate revoked" in bad.stdout + bad.stderr
    for name, cert in ((AUTH_CRL, auth), (SIGN_CRL, certs["sign"])):
        entry = crl_of(out, name).get_revoked_certificate_by_serial_number(cert.serial_number)
        assert entry is not None
        reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        assert reason == x509.ReasonFlags.key_compromise
    sign_ok = openssl_verify(tmp_path / "certs" / "sign-ca.pem", out / (SIGN_CRL + ".pem"),
                             tmp_path / "certs" / "sign.pem")
    assert "certificate revoked" in sign_ok.stdout + sign_ok.stderr


def test_a_suspended_card_is_on_hold_until_resumed(rig_home: Path, tmp_path: Path) -> None:
    serial = issue(rig_home, tmp_path)
    auth = card_certs(rig_home, tmp_path, tmp_path / "certs")["auth"]
    out = tmp_path / "crls"
    juki(rig_home, "card", "suspend", serial, "--reason", "investigation")
    publish(rig_home, out)
    entry = crl_of(out, AUTH_CRL).get_revoked_certificate_by_serial_number(auth.serial_number)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == (
        x509.ReasonFlags.certificate_hold)
    juki(rig_home, "card", "resume", serial)
    publish(rig_home, out)
    assert crl_of(out, AUTH_CRL).get_revoked_certificate_by_serial_number(
        auth.serial_number) is None
    good = openssl_verify(tmp_path / "certs" / "auth-ca.pem", out / (AUTH_CRL + ".pem"),
                          tmp_path / "certs" / "auth.pem")
    assert good.returncode == 0, good.stdout + good.stderr


def test_crl_publish_refuses_a_file_as_out(rig_home: Path, tmp_path: Path) -> None:
    target = tmp_path / "not-a-dir"
    target.write_text("x")
    result = juki(rig_home, "crl", "publish", "--out", str(target), check=2)
    assert "not a directory" in result.stderr and target.read_text() == "x"


# ---- the relying party: CA certificates and CRLs only ------------------------------------

@pytest.fixture
def relying_party(rig_home: Path, station) -> Path:  # type: ignore[no-untyped-def]
    """A home of its own with no token and no registry of the station's: the published
    J-LIS anchors and, as extra anchors, the station's CV keys (public keys only)."""
    home = rig_home / f"relying-party-{secrets.token_hex(4)}"
    home.mkdir(mode=0o700)
    anchors = home / "anchors.toml"
    anchors.write_text("".join(
        f'[[anchor]]\nkey_id = "{KeyId(raw).text}"\nmodulus = "{key.public_numbers().n:0512X}"\n'
        for raw, key in station_anchors(station.hsm).items()))
    StationHome(home).write_settings({"station": {"mode": "open"},
                                      "trust": {"anchors": ["jlis-production"],
                                                "extra": str(anchors)}})
    return home


def rp_verify(home: Path, ca: Path, crl: Path, check: int) -> dict:  # type: ignore[type-arg]
    result = juki(home, "verify", "--offline", "--ca", str(ca), "--crl", str(crl), "--json",
                  input=f"{PIN}\n", check=check)
    return json.loads(result.stdout)


def failed(verdict: dict) -> list[str]:  # type: ignore[type-arg]
    return [c["name"] for c in verdict["checks"] if not c["ok"]]


def _signed_crl(issuer: x509.Name, key, this_update: dt.datetime,  # type: ignore[no-untyped-def]
                next_update: dt.datetime) -> bytes:
    crl = (x509.CertificateRevocationListBuilder().issuer_name(issuer)
           .last_update(this_update).next_update(next_update)
           .add_extension(x509.CRLNumber(10**6), critical=False).sign(key, hashes.SHA256()))
    return crl.public_bytes(serialization.Encoding.PEM)


def test_relying_party_verify(rig_home: Path, tmp_path: Path, relying_party: Path,
                              station) -> None:  # type: ignore[no-untyped-def]
    serial = issue(rig_home, tmp_path)
    certs = card_certs(rig_home, tmp_path, tmp_path / "certs")
    ca = tmp_path / "certs" / "auth-ca.pem"
    out = tmp_path / "crls"
    publish(rig_home, out)
    crl = out / AUTH_CRL

    good = rp_verify(relying_party, ca, crl, check=0)
    assert good["genuine"] is True and good["card_serial"] == serial and good["offline"] is True
    checks = {c["name"]: c for c in good["checks"]}
    assert checks["jpki_certificate"]["ok"] and f"for card {serial}" in checks[
        "jpki_certificate"]["detail"]
    assert checks["crl"]["ok"] and "not listed" in checks["crl"]["detail"]
    assert {"cv_chain", "presence", "jpki_certificate", "crl"} <= set(checks)
    assert not (relying_party / "softhsm").exists()  # it never opened (or made) a token

    # a CRL signed by another key under the same issuer name: refused, named
    forged = tmp_path / "forged.crl.pem"
    now = dt.datetime.now(dt.UTC)
    forged.write_bytes(_signed_crl(certs["auth-ca"].subject,
                                   rsa.generate_private_key(public_exponent=65537, key_size=2048),
                                   now - dt.timedelta(minutes=1), now + dt.timedelta(hours=1)))
    verdict = rp_verify(relying_party, ca, forged, check=1)
    assert failed(verdict) == ["crl"] and verdict["genuine"] is False
    assert "not signed by that CA's key" in verdict["checks"][-1]["detail"] or any(
        "not signed by that CA's key" in c["detail"] for c in verdict["checks"])

    # a CRL of the right key whose next update has passed: "out of date"
    stale = tmp_path / "stale.crl.pem"
    stale.write_bytes(_signed_crl(certs["auth-ca"].subject,
                                  TokenRsaSigner(station.hsm, KeyRole.RESIDENT_ISSUING_CA, 1),
                                  now - dt.timedelta(days=2), now - dt.timedelta(days=1)))
    verdict = rp_verify(relying_party, ca, stale, check=1)
    assert failed(verdict) == ["crl"]
    assert any("out of date" in c["detail"] for c in verdict["checks"] if c["name"] == "crl")

    # the sign CA's certificate is no issuer of the auth certificate
    verdict = rp_verify(relying_party, tmp_path / "certs" / "sign-ca.pem", crl, check=1)
    assert failed(verdict) == ["jpki_certificate", "crl"]

    juki(rig_home, "card", "revoke", serial, "--reason", "stolen")
    publish(rig_home, out)
    verdict = rp_verify(relying_party, ca, crl, check=1)
    detail = next(c["detail"] for c in verdict["checks"] if c["name"] == "crl")
    assert failed(verdict) == ["crl"] and "revoked (keyCompromise)" in detail
    assert f"{certs['auth'].serial_number:x}" in detail


def test_relying_party_inputs_are_checked_before_the_card(rig_home: Path, tmp_path: Path,
                                                          relying_party: Path) -> None:
    garbage = tmp_path / "garbage.crl"
    garbage.write_bytes(b"\x30\x82\xff\xffnot a CRL")
    ca = tmp_path / "ca.pem"
    ca.write_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    for args, message in (
            (("--ca", str(ca), "--crl", str(garbage)), f"--ca {ca}: not a certificate"),
            (("--ca", str(tmp_path / "missing.pem")), "missing.pem"),
            (("--crl", str(garbage)), "needs at least one --ca")):
        result = juki(relying_party, "verify", "--offline", *args, input=f"{PIN}\n", check=2)
        assert message in result.stderr, result.stderr
    result = juki(relying_party, "verify", "--ca", str(ca), input=f"{PIN}\n", check=2)
    assert "give --offline too" in result.stderr
