"""Issue 11, defect 2: "cards stay unlocked after a command".

The attack, exactly as reported: after a `juki` command that verified a PIN, another
program opens the reader with plain PC/SC and sends the APDUs that need that PIN,
without any VERIFY:
- JPKI: SELECT the AP, SELECT the key EF, COMPUTE DIGITAL SIGNATURE ``80 2A 00 80``;
- card-info AP: READ BINARY of EF 0001 (individual number) and EF 0002 (4 information);
- PIV: GENERAL AUTHENTICATE ``00 87 11 9A 7C…`` with the PIV Authentication key.
Before the fix these answered 9000 (a signature, the data); now the card was powered off
at the end of the command (and a PIV PIN was also explicitly forgotten), so each answers
6982. Each check ends with a positive control in the same raw connection (VERIFY, then
the same bytes answer 9000), which shows the raw APDUs are right and the 6982 is the
security status, nothing else.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives import hashes

from cardlib.constants import Aid, CardInfoFile, JpkiFile, PivAlgorithm, PivKeyRef
from cardlib.digestinfo import digest_info
from cardlib.pcsc import PcscTransport
from cardlib.piv_objects import dynamic_auth, pad_pin

from ..conftest import juki
from ..operator_helpers import (
    ADMIN_PIN,
    ADMIN_PUK,
    READER,
    enroll,
    login,
    operator_station,
)
from ..operator_helpers import (
    pin_file as operator_pin_file,
)
from .test_card_commands import issue_with_tampered_attributes
from .test_commands import PIN, READ_FOR, issue, pin_file

JUKI = Path(sys.executable).parent / "juki"
SECURITY_STATUS_NOT_SATISFIED = 0x6982
SIGN_PIN, AUTH_PIN = "SIGN2026", "2468"  # tests.cli.test_commands.pin_file


def apdu(hex_apdu: str) -> bytes:
    return bytes.fromhex(hex_apdu.replace(" ", ""))


def send(transport: PcscTransport, raw: bytes) -> int:
    _data, sw = transport.send_and_receive(raw)
    return sw


def select_aid(aid: bytes) -> bytes:
    return apdu("00 A4 04 0C") + bytes((len(aid),)) + aid


def select_ef(fid: int) -> bytes:
    return apdu("00 A4 02 0C 02") + fid.to_bytes(2, "big")


def verify_selected(pin: str) -> bytes:
    return apdu("00 20 00 80") + bytes((len(pin),)) + pin.encode("ascii")


def jpki_signature_sw(key_fid: int, pin_fid: int, pin: str) -> int:
    """``80 2A 00 80`` by a JPKI key with no VERIFY; then the positive control."""
    sign = (apdu("80 2A 00 80 33") + digest_info(hashes.SHA256(), hashlib.sha256(b"x").digest())
            + b"\x00")
    with PcscTransport(READER) as card:
        assert send(card, select_aid(Aid.JPKI)) == 0x9000
        assert send(card, select_ef(key_fid)) == 0x9000
        attacked = send(card, sign)
        assert send(card, select_ef(pin_fid)) == 0x9000
        assert send(card, verify_selected(pin)) == 0x9000
        assert send(card, select_ef(key_fid)) == 0x9000
        data, sw = card.send_and_receive(sign)
        assert sw == 0x9000 and len(data) == 256  # the same bytes sign once the PIN is given
    return attacked


def card_info_read_sws(pin: str = PIN) -> list[int]:
    """READ BINARY of EF 0001 and EF 0002 in the card-info AP with no VERIFY."""
    read = apdu("00 B0 00 00 00")
    found = []
    with PcscTransport(READER) as card:
        assert send(card, select_aid(Aid.CARD_INFO)) == 0x9000
        for fid in (CardInfoFile.INDIVIDUAL_NUMBER, CardInfoFile.ATTRIBUTES):
            assert send(card, select_ef(fid)) == 0x9000
            found.append(send(card, read))
        assert send(card, select_ef(CardInfoFile.PIN)) == 0x9000
        assert send(card, verify_selected(pin)) == 0x9000
        assert send(card, select_ef(CardInfoFile.ATTRIBUTES)) == 0x9000
        assert send(card, read) == 0x9000
    return found


def assert_resident_card_locked(first: str, card_info_pin: str = PIN) -> None:
    """Every raw attack gets 6982; ``first`` is the one against the PIN the command
    verified. Only the first attack after a command can find that PIN: selecting another
    AP clears the status of the one left, and the attack's own connection powers off."""
    attacks = {
        "card_info": lambda: card_info_read_sws(card_info_pin) == [0x6982] * 2,
        "jpki_sign": lambda: jpki_signature_sw(JpkiFile.SIGN_KEY, JpkiFile.SIGN_PIN,
                                               SIGN_PIN) == SECURITY_STATUS_NOT_SATISFIED,
        "jpki_auth": lambda: jpki_signature_sw(JpkiFile.AUTH_KEY, JpkiFile.AUTH_PIN,
                                               AUTH_PIN) == SECURITY_STATUS_NOT_SATISFIED,
    }
    for name in (first, *(n for n in attacks if n != first)):
        assert attacks[name](), f"raw {name} attack without VERIFY was not refused with 6982"


def piv_signature_sw(pin: str) -> int:
    """GENERAL AUTHENTICATE with key 9A (P-256) and no VERIFY; then the positive control."""
    template = dynamic_auth(response=b"", challenge=bytes(range(32)))  # 7C 24 {82 00, 81 20 …}
    authenticate = (apdu("00 87") + bytes((PivAlgorithm.ECC_P256, PivKeyRef.AUTHENTICATION,
                                           len(template))) + template + b"\x00")
    with PcscTransport(READER) as card:
        assert send(card, apdu("00 A4 04 00 09 A0 00 00 03 08 00 00 10 00 00")) == 0x9000
        attacked = send(card, authenticate)
        assert send(card, apdu("00 20 00 80 08") + pad_pin(pin)) == 0x9000
        assert send(card, authenticate) == 0x9000
    return attacked


# ---- the resident card: card read, card sign, card certs --with-sign, card pin change ------

def test_card_read_leaves_the_card_locked(rig_home: Path, tmp_path: Path) -> None:
    issue(rig_home, tmp_path)
    juki(rig_home, "card", "read", *READ_FOR, "--what", "all", "--json", input=f"{PIN}\n")
    assert_resident_card_locked("card_info")


def test_card_sign_leaves_the_card_locked(rig_home: Path, tmp_path: Path) -> None:
    issue(rig_home, tmp_path)
    document = tmp_path / "doc.txt"
    document.write_text("住民票の写しの交付請求\n")
    for key in ("sign", "auth"):
        juki(rig_home, "card", "sign", str(document), "--key", key,
             "--out", str(tmp_path / f"doc.{key}.p7s"), "--pin-file", str(pin_file(tmp_path)))
        assert_resident_card_locked(f"jpki_{key}")


def test_card_certs_with_sign_leaves_the_card_locked(rig_home: Path, tmp_path: Path) -> None:
    issue(rig_home, tmp_path)
    juki(rig_home, "card", "certs", "--out", str(tmp_path / "certs"), "--with-sign",
         "--pin-file", str(pin_file(tmp_path)), "--json")
    with PcscTransport(READER) as card:  # the signature certificate needs the sign PIN too
        assert send(card, select_aid(Aid.JPKI)) == 0x9000
        assert send(card, select_ef(JpkiFile.SIGN_CERT)) == 0x9000
        assert send(card, apdu("00 B0 00 00 00")) == SECURITY_STATUS_NOT_SATISFIED
    juki(rig_home, "card", "certs", "--out", str(tmp_path / "again"), "--with-sign",
         "--pin-file", str(pin_file(tmp_path)), "--json")
    assert_resident_card_locked("jpki_sign")


def test_card_pin_change_leaves_the_card_locked(rig_home: Path, tmp_path: Path) -> None:
    issue(rig_home, tmp_path)
    pins = tmp_path / "change.txt"
    pins.write_text(f"card_info={PIN}\ncard_info_new=8080\n")
    pins.chmod(0o600)
    juki(rig_home, "card", "pin", "change", "card_info", "--pin-file", str(pins))
    assert_resident_card_locked("card_info", card_info_pin="8080")


def test_a_card_read_that_fails_after_the_pin_leaves_the_card_locked(rig_home: Path,
                                                                     tmp_path: Path) -> None:
    """The PIN verified, then the integrity check failed (a tampered EF 0002): the command
    exits with an error and the card is powered off all the same."""
    issue_with_tampered_attributes(rig_home, tmp_path)
    juki(rig_home, "card", "read", *READ_FOR, "--json", input=f"{PIN}\n", check=3)
    assert_resident_card_locked("card_info")


# ---- the operator card: login, pam-auth, enroll, unblock -----------------------------------

def test_login_and_pam_auth_leave_the_piv_pin_unverified(rig_home: Path, tmp_path: Path) -> None:
    home = operator_station(rig_home, tmp_path / "station")
    card = tmp_path / "op.json"
    enroll(home, rig_home, card, "op-locked", "verify", unix_user="locked")
    assert piv_signature_sw(ADMIN_PIN) == SECURITY_STATUS_NOT_SATISFIED  # after enrolment
    login(home, rig_home, card)
    assert piv_signature_sw(ADMIN_PIN) == SECURITY_STATUS_NOT_SATISFIED  # after login
    result = subprocess.run([str(JUKI), "--home", str(home), "pam-auth", "--reader", READER],
                            input=ADMIN_PIN.encode() + b"\x00", capture_output=True,
                            env={"PAM_USER": "locked", "PAM_TYPE": "auth", "PATH": "/usr/bin:/bin"},
                            timeout=60, check=False)  # as pam_exec runs it
    assert result.returncode == 0, result.stderr
    assert piv_signature_sw(ADMIN_PIN) == SECURITY_STATUS_NOT_SATISFIED  # after pam-auth


def test_operator_unblock_leaves_the_piv_pin_unverified(rig_home: Path,
                                                        tmp_path: Path) -> None:
    home = operator_station(rig_home, tmp_path / "station")
    card = tmp_path / "op.json"
    enroll(home, rig_home, card, "op-unblock", "verify")
    juki(home, "operator", "unblock", "--id", "op-unblock", "--reader", READER,
         "--pin-file", str(operator_pin_file(tmp_path, "565656", ADMIN_PUK)))
    assert piv_signature_sw("565656") == SECURITY_STATUS_NOT_SATISFIED


def test_operator_enroll_leaves_no_management_authentication(rig_home: Path,
                                                             tmp_path: Path) -> None:
    """Enrolment authenticates with the management key: after it, PUT DATA without that
    authentication is refused too (the power-off ended it)."""
    home = operator_station(rig_home, tmp_path / "station")
    enroll(home, rig_home, tmp_path / "op.json", "op-admin-gone", "verify")
    with PcscTransport(READER) as card:
        assert send(card, apdu("00 A4 04 00 09 A0 00 00 03 08 00 00 10 00 00")) == 0x9000
        put_chuid = apdu("00 DB 3F FF 0A 5C 03 5F C1 02 53 03 30 01 00")
        assert send(card, put_chuid) == SECURITY_STATUS_NOT_SATISFIED


def test_through_pcscd_a_warm_reset_keeps_the_pin_and_a_power_off_clears_it(
        rig_home: Path, tmp_path: Path) -> None:
    """The emulator behind pcscd and vpcd is as unforgiving as the real card (real-card.md
    §2.1): a close with SCARD_LEAVE_CARD or SCARD_RESET_CARD leaves the PIN verified, so
    only the power-off the host now does locks it (else the tests above would prove
    nothing a real card would honour)."""
    from smartcard import scard
    from smartcard.System import readers

    issue(rig_home, tmp_path)
    read = apdu("00 B0 00 00 00")

    def session(disposition: int, *, verify: bool) -> int:
        connection = next(r for r in readers() if str(r) == READER).createConnection()
        connection.connect(disposition=disposition)
        try:
            for command in (select_aid(Aid.CARD_INFO), select_ef(CardInfoFile.PIN),
                            *([verify_selected(PIN)] if verify else [])):
                _data, sw1, sw2 = connection.transmit(list(command))
                assert (sw1, sw2) == (0x90, 0x00)
            connection.transmit(list(select_ef(CardInfoFile.ATTRIBUTES)))
            _data, sw1, sw2 = connection.transmit(list(read))
            return sw1 << 8 | sw2
        finally:
            connection.disconnect()
            connection.release()

    assert session(scard.SCARD_RESET_CARD, verify=True) == 0x9000
    assert session(scard.SCARD_RESET_CARD, verify=False) == 0x9000  # survived a warm reset
    assert session(scard.SCARD_LEAVE_CARD, verify=False) == 0x9000  # and a plain close
    assert session(scard.SCARD_UNPOWER_CARD, verify=False) == 0x9000  # the close powers off
    assert session(scard.SCARD_LEAVE_CARD, verify=False) == SECURITY_STATUS_NOT_SATISFIED
