"""Known answers: RFC 4493 AES-CMAC, NIST SP 800-108 counter-mode CMAC (from the
cryptography-vectors package), and the nine published SCP03 APDU sequences
(osmocom/pysim), byte for byte, on the host side and on the card side."""

from __future__ import annotations

import json
from pathlib import Path

import cryptography_vectors
import pytest
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.kdf.kbkdf import KBKDFCMAC, CounterLocation, Mode

from cardlib.apdu import CommandApdu
from cardlib.channel import ApduChannel
from cardlib.scp03.card import CardSecureChannel
from cardlib.scp03.crypto import aes_cmac
from cardlib.scp03.host import open_secure_channel
from cardlib.scp03.kdf import counter_kdf, scp03_derive
from cardlib.scp03.keys import StaticKeyPrfs
from tests.helpers import ScriptedTransport

VECTORS = json.loads((Path(__file__).resolve().parents[2] / "fixtures" / "scp03-pysim.json")
                     .read_text())
CASES = VECTORS["cases"]
PLAIN = VECTORS["plain"]
LEVEL = {"03": 0x03, "11": 0x11, "33": 0x33}


# ---- RFC 4493 ----------------------------------------------------------------------

RFC4493_KEY = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
RFC4493_MESSAGE = bytes.fromhex(
    "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710")


@pytest.mark.parametrize(("length", "mac"), [
    (0, "bb1d6929e95937287fa37d129b756746"),
    (16, "070a16b46b4d4144f79bdd9dd04a287c"),
    (40, "dfa66747de9ae63030ca32611497c827"),
    (64, "51f0bebf7e3b9d92fc49741779363cfe"),
])
def test_rfc4493_cmac(length: int, mac: str) -> None:
    assert aes_cmac(RFC4493_KEY, RFC4493_MESSAGE[:length]).hex() == mac


# ---- NIST SP 800-108 counter mode, CMAC-AES, 8-bit counter -----------------------

def _nist_kbkdf_cases() -> list[dict[str, str]]:
    path = Path(cryptography_vectors.__file__).parent / "KDF" / "nist-800-108-KBKDF-CTR.txt"
    cases, section, current = [], {}, {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("[") and "=" in line:
            key, value = line[1:-1].split("=", 1)
            section[key] = value
        elif "=" in line and not line.startswith(("Binary", "instring", "#")):
            key, _, value = line.partition("=")
            key, value = key.strip(), value.strip()
            current[key] = value
            if key == "KO":
                if (section.get("PRF", "").startswith("CMAC_AES")
                        and section.get("RLEN") == "8_BITS"):
                    cases.append({**section, **current})
                current = {}
    return cases


NIST_CASES = _nist_kbkdf_cases()


def test_nist_file_has_the_cmac_aes_cases() -> None:
    locations = {c["CTRLOCATION"] for c in NIST_CASES}
    assert len(NIST_CASES) >= 120 and locations >= {"BEFORE_FIXED", "AFTER_FIXED", "MIDDLE_FIXED"}


@pytest.mark.parametrize("case", NIST_CASES, ids=lambda c: f"{c['PRF']}-{c['CTRLOCATION']}-{c['COUNT']}")
def test_nist_sp800_108_counter_cmac(case: dict[str, str]) -> None:
    key = bytes.fromhex(case["KI"])
    if case["CTRLOCATION"] == "MIDDLE_FIXED":
        before = bytes.fromhex(case["DataBeforeCtrData"])
        after = bytes.fromhex(case["DataAfterCtrData"])
    elif case["CTRLOCATION"] == "BEFORE_FIXED":
        before, after = b"", bytes.fromhex(case["FixedInputData"])
    else:
        before, after = bytes.fromhex(case["FixedInputData"]), b""
    out = counter_kdf(lambda data: aes_cmac(key, data), before, after, int(case["L"]) // 8)
    assert out.hex() == case["KO"]


def test_scp03_derivation_equals_cryptographys_kbkdf() -> None:
    """The reference's remark: KBKDFCMAC with the counter in the middle is the same KDF."""
    key, context = bytes(range(16)), bytes(range(100, 116))
    ours = scp03_derive(lambda data: aes_cmac(key, data), 0x06, context, 128)
    fixed = bytes(11) + b"\x06" + b"\x00" + (128).to_bytes(2, "big") + context
    kdf = KBKDFCMAC(algorithms.AES, Mode.CounterMode, 16, 1, None, label=None, context=None,
                    fixed=fixed, location=CounterLocation.MiddleFixed, break_location=15)
    assert ours == kdf.derive(key)


# ---- the nine SCP03 sequences --------------------------------------------------------

def _static(case: dict) -> StaticKeyPrfs:
    keys = case["keys"]
    return StaticKeyPrfs.from_software_keys(bytes.fromhex(keys["enc"]), bytes.fromhex(keys["mac"]))


def _level(case: dict) -> int:
    return LEVEL[case["name"].rsplit("_", 1)[1]]


WRAPPED = ["get_eid", "case_1", "case_2", "case_3", "case_4"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_host_side_byte_for_byte(case: dict) -> None:
    init_cmd = bytes.fromhex(case["init_upd_cmd"])
    script = iter([
        (init_cmd, bytes.fromhex(case["init_upd_rsp"]), 0x9000),
        (bytes.fromhex(case["ext_auth_cmd"]), b"", 0x9000),
    ])

    def card(apdu: bytes) -> tuple[bytes, int]:
        expected, data, sw = next(script)
        assert apdu.hex() == expected.hex()
        return data, sw

    transport = open_secure_channel(ApduChannel(ScriptedTransport(card)), _static(case), _level(case),
                                    key_version=int(case["keys"]["kvn"], 16),
                                    host_challenge=init_cmd[5:13])
    session = transport.session
    wrapped = session.wrap_command(CommandApdu.decode(bytes.fromhex(PLAIN["get_eid_cmd_plain"])))
    assert wrapped.encode().hex() == case["get_eid_cmd"]
    data, sw = session.unwrap_response(bytes.fromhex(case["get_eid_rsp"]), 0x9000)
    assert (data.hex(), sw) == (PLAIN["get_eid_rsp_plain"], 0x9000)
    for name in WRAPPED[1:]:
        plain = CommandApdu.decode(bytes.fromhex(PLAIN[f"{name}_apdu_plain"]))
        assert session.wrap_command(plain).encode().hex() == case[f"{name}_apdu"], name


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_card_side_byte_for_byte(case: dict) -> None:
    init_rsp = bytes.fromhex(case["init_upd_rsp"])
    card = CardSecureChannel(_static(case), key_version=int(case["keys"]["kvn"], 16),
                             diversification_data=init_rsp[:10], i_param=init_rsp[12],
                             challenge_source=lambda: (init_rsp[13:21], init_rsp[29:32]))
    answer = card.initialize_update(CommandApdu.decode(bytes.fromhex(case["init_upd_cmd"])))
    assert answer == init_rsp
    assert card.external_authenticate(CommandApdu.decode(bytes.fromhex(case["ext_auth_cmd"])))
    session = card.session
    assert session is not None
    plain = session.unwrap_command(CommandApdu.decode(bytes.fromhex(case["get_eid_cmd"])))
    assert plain is not None and plain.encode().hex() == PLAIN["get_eid_cmd_plain"]
    response = session.wrap_response(bytes.fromhex(PLAIN["get_eid_rsp_plain"]), 0x9000)
    assert response.hex() == case["get_eid_rsp"] + "9000"
    for name in WRAPPED[1:]:
        plain = session.unwrap_command(CommandApdu.decode(bytes.fromhex(case[f"{name}_apdu"])))
        assert plain is not None and plain.encode().hex() == PLAIN[f"{name}_apdu_plain"], name
