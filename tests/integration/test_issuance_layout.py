"""A card issued by the station has the real card's layout and proves itself from its own
data: the MF chain verifies to the station's anchors, EF 0004 certifies the signer of EF
0003 and EF 0007, DF31/DF32 match the files, the presence key and the 共通AP key sign a
challenge, 照合番号B (with the security code returned once) opens EF 0002.

SoftHSM with a token of its own and the emulated card in process (no pcscd), in a fresh
interpreter per test (one SoftHSM configuration per process); the card is read back with
raw APDUs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

RIG_TOKEN_PRELUDE = """
import json, sys
from pathlib import Path
from hsm.rig_mark import mark_test_token
from hsm.station_keys import ensure_station_keys
from tools.rig.rig import Rig
from tools.station.home import StationHome

root = Path(sys.argv[1])
home = StationHome(root / "home")
Rig(home).ensure_token()
hsm = home.open_token()
mark_test_token(hsm)  # a rig's own token: the card maker may export transport keys
ensure_station_keys(hsm)
"""

SCRIPT = RIG_TOKEN_PRELUDE + """
import dataclasses, hashlib
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cardlib.apdu import split_response
from cardlib.channel import ApduChannel
from cardlib.collation import collation_b
from cardlib.cv_certificate import decode_card_rsa_key, decode_cv_certificate, verify_cv_chain
from cardlib.emulator.resident_card_os import ResidentCardOs
from cardlib.emulator.state import StateFile
from cardlib.integrity import decode_integrity_record
from cardlib.transport import InProcessTransport
from hsm.cv_hierarchy import CvHierarchy, station_anchors
from tools.issuance.request import load_request
from tools.issuance.resident_card import issue_resident_card
from tools.registry import Registry
from tools.rig.card_maker import manufacture_blank_card
from tools.station.pins import Pin, ResidentCardPins

state = root / "card.json"
serial = manufacture_blank_card(hsm, state)
card = ResidentCardOs(StateFile(state).load(), StateFile(state).save)
card.power_on()
registry = Registry(root / "registry.sqlite")
registry.migrate()
request = load_request(Path(sys.argv[2]))
pins = ResidentCardPins(Pin("5823"), Pin("1357"), Pin("JUKI2468"))
import io, logging
trace = io.StringIO()
logging.basicConfig(level=1, stream=trace)  # every logger, the APDU trace level included
issued = issue_resident_card(ApduChannel(InProcessTransport(card)), hsm, registry, request, pins)
logging.getLogger().handlers.clear()
b_value = collation_b(request.birth_date, issued.expiry, issued.security_code.reveal())
stored = b"".join(p.read_bytes() for p in root.glob("registry.sqlite*"))
out = {"b_in_registry": b_value.encode() in stored, "b_in_log": b_value in trace.getvalue()
       or b_value.encode().hex() in trace.getvalue().replace(" ", "").lower(),
       "log_lines": len(trace.getvalue().splitlines()),
"json": issued.as_json(), "repr": repr(issued), "serial": serial,
       "registry": json.dumps(registry.get(serial).as_json(), default=str)}

def apdu(hex_):
    return split_response(card.process_apdu(bytes.fromhex(hex_.replace(" ", ""))))

def ok(hex_):
    data, sw = apdu(hex_)
    assert sw == 0x9000, (hex_, hex(sw))
    return data

def select(aid):
    ok(f"00A4040C{len(aid)//2:02X}{aid}")

def read_ef(fid, length):
    ok(f"00A4020C02{fid}")
    return ok(f"00B00000{length:02X}" if length < 256 else f"00B0000000{length:04X}")

anchors = station_anchors(hsm)
card.power_on()
mf = {tag: ok(f"00CA{tag}000000") for tag in ("0042", "0045", "00F0", "00F2", "00F7", "00F8",
                                               "7F21", "5F51")}
chain = [decode_cv_certificate(mf["00F8"]), decode_cv_certificate(mf["7F21"])]
common_key = verify_cv_chain(chain, anchors).public_key
h = CvHierarchy.current(hsm)
out["mf"] = {"issuer": mf["0042"] == h.root_id.raw, "card_id": mf["0045"].decode(),
             "municipality": mf["00F0"].decode(), "expiry": mf["00F2"].decode(),
             "f7": mf["00F7"] == chain[0].holder.raw, "atr": mf["5F51"].hex(),
             "holder": str(chain[1].holder)}
select("D3921000310001010100")
record = ok("00B2010C00")
out["common_record"] = record[:30].decode()
common_ref = (ok("00A4020C020002"), ok("00B2010400"))[1]
challenge = bytes(range(16))
signature = ok("0088009910" + challenge.hex() + "00")
common_key.verify(signature, challenge, padding.PKCS1v15(), hashes.SHA256())
out["common_ref"] = common_ref[:16] == h.mf_intermediate.key_id.raw

select("D3921000310001010408")
cert_raw = read_ef("0004", 568)
card_info_cert = verify_cv_chain([decode_cv_certificate(cert_raw)], anchors)
out["card_info_cert"] = [str(card_info_cert.issuer), str(card_info_cert.holder)]
out["basic_info"] = read_ef("0005", 256).hex()
ok("00A4020C020011")
ok("0020008004" + b"5823".hex())
number_file = read_ef("0001", 17)
attributes_file = ok("00A4020C020002") or ok("00B0000000")
integrity = decode_integrity_record(read_ef("0003", 336))
out["integrity"] = [integrity.verifies_under(card_info_cert.public_key),
                    integrity.mismatches(number_file, attributes_file)]
signed_key = read_ef("0007", 536)
df51, df52 = signed_key[5:5 + 270], signed_key[5 + 270 + 5:5 + 270 + 5 + 256]
card_info_cert.public_key.verify(df52, df51, padding.PKCS1v15(), hashes.SHA256())
presence = decode_card_rsa_key(df51[5:])
digest_info = bytes.fromhex("3031300d060960864801650304020105000420") + hashlib.sha256(challenge).digest()
presence.verify(ok("802A000033" + digest_info.hex() + "00"), challenge, padding.PKCS1v15(),
                hashes.SHA256())
out["df43"] = out["basic_info"].find(hashlib.sha256(df51).hexdigest())
out["number_file"] = number_file.hex()
out["session_key"] = read_ef("0006", 4).hex()
out["unknown_0008"] = read_ef("0008", 16).hex()
card.power_on()
select("D3921000310001010408")
code = issued.security_code.reveal()
b = collation_b(request.birth_date, issued.expiry, code)
ok("00A4020C020015")
ok(f"00200080{len(b):02X}" + b.encode().hex())
ok("00A4020C020002")
out["b_opens_0002"] = ok("00B0000004").hex()
ok("00A4020C020001")
out["b_not_0001"] = hex(apdu("00B0000004")[1])
select("D3921000310001010402")
surface_cert = verify_cv_chain([decode_cv_certificate(read_ef("0004", 568))], anchors)
out["surface_cert"] = [str(surface_cert.issuer), str(surface_cert.holder)]
select("D392F000260100000001")
out["jpki_0006"] = read_ef("0006", 160)[:32].decode()
out["jpki_0008"] = read_ef("0008", 3).hex()
select("D3921000310001010401")
ok("00A4020C020002")
out["juki_ref"] = ok("00B2010400")[:16] == common_ref[:16]
print(json.dumps(out))
"""


def run_with_yamada_request(script: str, tmp_path: Path) -> dict:  # type: ignore[type-arg]
    """Run ``script`` in a fresh interpreter (argv: ``tmp_path``, the Yamada request) and
    return the JSON of its last line of output."""
    request = ROOT / "fixtures" / "requests" / "resident-yamada.json"
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path), str(request)],
                            capture_output=True, text=True, cwd=ROOT, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_issued_card_has_the_real_layout_and_proves_itself(tmp_path: Path) -> None:
    out = run_with_yamada_request(SCRIPT, tmp_path)
    serial = out["serial"]
    code = out["json"]["card_face"]["security_code"]
    assert len(code) == 4 and code.isdigit()
    assert code not in out["repr"] and "security_code" not in out["registry"]
    # Attack: look for 照合番号B (birth, expiry year, code) where it must never be: the
    # registry's files and everything logged during issuance (APDU trace included).
    assert out["log_lines"] > 50
    assert out["b_in_registry"] is False and out["b_in_log"] is False
    expiry = out["json"]["expiry"].replace("-", "")
    assert out["mf"] == {"issuer": True, "card_id": serial, "municipality": "13101",
                         "expiry": expiry, "f7": True, "atr": "e000ff8131fe4514",
                         "holder": f"{serial[-7:]}/000"}
    assert out["common_record"] == "\x01\x1c" + serial + "13101" + expiry
    assert out["common_ref"] and out["juki_ref"]
    assert out["card_info_cert"] == ["7000033/001", "7000031/001"]
    assert out["surface_cert"] == ["7000023/001", "7000021/001"]
    assert out["integrity"] == [True, []]
    assert out["number_file"].endswith("ffff") and len(out["number_file"]) == 34
    assert out["basic_info"].startswith("ff40") and out["df43"] > 0
    assert out["basic_info"][out["df43"] + 64:out["df43"] + 64 + 192] == "ff" * 96
    assert out["session_key"].startswith("a1")
    assert out["unknown_0008"] == "ff" * 16
    assert out["b_opens_0002"].startswith("ff20") and out["b_not_0001"] == "0x6982"
    assert out["jpki_0006"] == "JPKIAPICCTOKEN2".ljust(32)
    assert out["jpki_0008"] == "8f8f00"


ROTATION_SCRIPT = RIG_TOKEN_PRELUDE + """
from cardlib.apdu import split_response
from cardlib.channel import ApduChannel
from cardlib.cv_certificate import decode_cv_certificate, verify_cv_chain
from cardlib.emulator.resident_card_os import ResidentCardOs
from cardlib.emulator.state import StateFile
from cardlib.transport import InProcessTransport
from hsm.cv_hierarchy import rotate_cv_role, station_anchors
from hsm.roles import KeyRole
from tools.issuance.request import load_request
from tools.issuance.resident_card import issue_resident_card
from tools.registry import Registry, new_record_code
from tools.rig.card_maker import manufacture_blank_card
from tools.station.pins import Pin, ResidentCardPins
import dataclasses

registry = Registry(root / "registry.sqlite")
registry.migrate()
base = load_request(Path(sys.argv[2]))
pins = ResidentCardPins(Pin("5823"), Pin("1357"), Pin("JUKI2468"))

def issue(name):
    state = root / f"{name}.json"
    manufacture_blank_card(hsm, state)
    card = ResidentCardOs(StateFile(state).load(), StateFile(state).save)
    card.power_on()
    request = dataclasses.replace(base, resident_code=new_record_code())
    issue_resident_card(ApduChannel(InProcessTransport(card)), hsm, registry, request, pins)
    return card

def chains(card):
    def ok(hex_):
        data, sw = split_response(card.process_apdu(bytes.fromhex(hex_)))
        assert sw == 0x9000, (hex_, hex(sw))
        return data
    card.power_on()
    anchors = station_anchors(hsm)
    mf = verify_cv_chain([decode_cv_certificate(ok("00CA00F8000000")),
                          decode_cv_certificate(ok("00CA7F21000000"))], anchors)
    found = [str(decode_cv_certificate(ok("00CA00F8000000")).issuer)]
    for aid in ("D3921000310001010408", "D3921000310001010402"):
        ok("00A4040C0A" + aid)
        ok("00A4020C020004")
        certificate = decode_cv_certificate(ok("00B00000000238"))
        verify_cv_chain([certificate], anchors)
        found.append(str(certificate.issuer))
    return found + [mf.holder.group]

old = issue("old")
for role in (KeyRole.CV_ROOT, KeyRole.CV_CARD_INFO_CA, KeyRole.CV_SURFACE_CA):
    rotate_cv_role(hsm, role)
new = issue("new")
print(json.dumps({"old": chains(old), "new": chains(new), "anchors": len(station_anchors(hsm))}))
"""


def test_rotation_keeps_cards_of_the_old_hierarchy_verifying(tmp_path: Path) -> None:
    """Cards issued before a rotation of the three CAs (and so of the signers they
    certify) and cards issued after both chain to the station's anchors."""
    out = run_with_yamada_request(ROTATION_SCRIPT, tmp_path)
    assert out == {"old": ["7000020/001", "7000033/001", "7000023/001", "000"],
                   "new": ["7000020/002", "7000033/002", "7000023/002", "000"], "anchors": 6}


MISSING_SCRIPT = RIG_TOKEN_PRELUDE + """
from cardlib.channel import ApduChannel
from cardlib.emulator.resident_card_os import ResidentCardOs
from cardlib.emulator.state import StateFile
from cardlib.transport import InProcessTransport
from hsm.cv_hierarchy import certificate_label
from hsm.errors import KeyNotFoundError
from hsm.roles import KeyRole
from tools.issuance.request import load_request
from tools.issuance.resident_card import issue_resident_card
from tools.registry import Registry
from tools.rig.card_maker import manufacture_blank_card
from tools.station.pins import Pin, ResidentCardPins
from pkcs11 import Attribute, ObjectClass

label = certificate_label(KeyRole.CV_CARD_INFO_SIGNER, 1)
hsm.call(lambda s: [o.destroy() for o in s.get_objects({Attribute.CLASS: ObjectClass.DATA,
                                                         Attribute.LABEL: label})])
state = root / "card.json"
manufacture_blank_card(hsm, state)
card = ResidentCardOs(StateFile(state).load(), StateFile(state).save)
card.power_on()
sent = []

class Counting(InProcessTransport):
    def send_and_receive(self, apdu):
        sent.append(apdu)
        return super().send_and_receive(apdu)

registry = Registry(root / "registry.sqlite")
registry.migrate()
try:
    issue_resident_card(ApduChannel(Counting(card)), hsm, registry,
                        load_request(Path(sys.argv[2])), ResidentCardPins(Pin("5823"),
                        Pin("1357"), Pin("JUKI2468")))
    error = None
except KeyNotFoundError as exc:
    error = str(exc)
print(json.dumps({"error": error, "apdus": len(sent), "rows": len(registry.list()),
                  "life_cycle": StateFile(state).load().life_cycle}))
"""


def test_no_card_io_without_the_cv_hierarchy(tmp_path: Path) -> None:
    """A token whose card-info signer has lost its CV certificate: issuance stops before
    the first APDU, with no registry row and the card still blank (OP_READY)."""
    out = run_with_yamada_request(MISSING_SCRIPT, tmp_path)
    assert "no CV certificate of juki/cv-card-info-signer/v1" in out["error"]
    assert out["apdus"] == 0 and out["rows"] == 0 and out["life_cycle"] == 1
