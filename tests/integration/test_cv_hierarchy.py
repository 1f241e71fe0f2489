"""Our CV hierarchy in SoftHSM: keys with CKA_ID = the 16-byte key ID, never extractable;
certificates signed in the token that chain to the station's anchors; an idempotent
init; rotation that keeps old certificates verifying; a swapped certificate refused.

Each test runs its own token in a fresh interpreter (one SoftHSM configuration per
process), no pcscd needed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

PRELUDE = """
import json, sys
from pathlib import Path
from hsm.station_keys import ensure_station_keys
from tools.station.home import StationHome
from tools.rig.rig import Rig

home = StationHome(Path(sys.argv[1]))
Rig(home).ensure_token()
hsm = home.open_token()
first = ensure_station_keys(hsm)
out = {}
"""


def run(tmp_path: Path, body: str) -> dict:  # type: ignore[type-arg]
    script = PRELUDE + body + "\nprint(json.dumps(out))\n"
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "home")],
                            capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


INIT_AND_KEYS = """
import pkcs11
from pkcs11 import Attribute, ObjectClass
from hsm.keys import inventory
from hsm.cv_hierarchy import CV_ROLES, cv_key_id
from hsm.roles import label_for
second = ensure_station_keys(hsm)
out["first"] = [l for l, c in first.keys if c]
out["second_created"] = second.created
out["keys"] = {k.role: [k.cv_key_id, k.sensitive, k.extractable, k.never_extractable, k.bits]
               for k in inventory(hsm) if k.role.startswith("cv-")}
def probe(session):
    found = {}
    for role in CV_ROLES:
        key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label_for(role, 1))
        public = session.get_key(object_class=ObjectClass.PUBLIC_KEY, label=label_for(role, 1))
        try:
            key[Attribute.PRIVATE_EXPONENT]
            leaked = True
        except pkcs11.PKCS11Error:
            leaked = False
        if key[Attribute.DECRYPT] or key[Attribute.UNWRAP] or hasattr(key, "decrypt"):
            leaked = True  # a signing key only: no decryption oracle
        found[role.value] = [bytes(key[Attribute.ID]).hex(), bytes(public[Attribute.ID]).hex(),
                             cv_key_id(role, 1).raw.hex(), leaked]
    return found
out["ids"] = hsm.call(probe)
"""


def test_init_creates_six_cv_keys_once_with_key_ids(tmp_path: Path) -> None:
    out = run(tmp_path, INIT_AND_KEYS)
    cv_labels = sorted(label for label in out["first"] if "/cv-" in label)
    assert cv_labels == sorted(f"juki/cv-{r}/v1" for r in (
        "root", "mf-intermediate", "card-info-ca", "card-info-signer", "surface-ca",
        "surface-signer"))
    assert out["second_created"] is False  # the second init is a no-op
    assert out["keys"] == {
        "cv-root": ["7000020/001", True, False, True, 2048],
        "cv-mf-intermediate": ["7000022/001", True, False, True, 2048],
        "cv-card-info-ca": ["7000033/001", True, False, True, 2048],
        "cv-card-info-signer": ["7000031/001", True, False, True, 2048],
        "cv-surface-ca": ["7000023/001", True, False, True, 2048],
        "cv-surface-signer": ["7000021/001", True, False, True, 2048],
    }
    for private_id, public_id, expected, leaked in out["ids"].values():
        assert private_id == public_id == expected
        assert bytes.fromhex(expected)[7:9] == b"\x08\x05" and expected.startswith("37")
        assert not leaked  # the private exponent cannot be read


CHAINS = """
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cardlib.cv_certificate import KeyId, decode_cv_certificate, verify_cv_chain
from hsm.cv_hierarchy import CvHierarchy, station_anchors
h = CvHierarchy.current(hsm)
anchors = station_anchors(hsm)
out["anchors"] = sorted(k.hex() for k in anchors)
mf = decode_cv_certificate(h.mf_certificate.encode(template=False))
out["mf"] = [str(mf.issuer), str(mf.holder), str(h.root_id), str(h.mf_intermediate.key_id),
             verify_cv_chain([mf], anchors).public_key.public_numbers()
             == h.mf_intermediate.public_key().public_numbers()]
for name, cert, signer in (("card_info", h.card_info_certificate, h.card_info_signer),
                           ("surface", h.surface_certificate, h.surface_signer)):
    raw = cert.encode()
    parsed = decode_cv_certificate(raw)
    last = verify_cv_chain([parsed], anchors)
    message = b"DF31 || DF32"
    signature = signer.sign(message)
    signer.public_key().verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    last.public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    out[name] = [len(raw), str(parsed.issuer), str(parsed.holder)]
payload = bytes.fromhex("3031300d060960864801650304020105000420") + bytes(32) + b"extra"
recovered = h.surface_signer.public_key().recover_data_from_signature(
    h.surface_signer.sign_padded(payload), padding.PKCS1v15(), None)
out["padded"] = recovered == payload
from hsm.errors import HsmError
try:
    h.surface_signer.sign_padded(bytes(246))  # no room left for PKCS#1 v1.5 padding
    out["oversize"] = "signed"
except HsmError as exc:
    out["oversize"] = str(exc)
card_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
seven_f21 = h.mf_intermediate.certify(KeyId.of("0012345", "000"), card_key.public_key())
again = h.mf_intermediate.certify(KeyId.of("0012345", "000"), card_key.public_key())
chain_end = verify_cv_chain([mf, decode_cv_certificate(seven_f21.encode(template=False))], anchors)
out["7f21"] = [str(chain_end.holder), seven_f21.encode() == again.encode()]
"""


def test_certificates_chain_to_the_station_anchors(tmp_path: Path) -> None:
    out = run(tmp_path, CHAINS)
    assert out["anchors"] == sorted(
        (n.encode() + b"\x08\x05" + b"001" + bytes(4)).hex() for n in ("7000020", "7000033",
                                                                         "7000023"))
    assert out["mf"] == ["7000020/001", "7000022/001", "7000020/001", "7000022/001", True]
    assert out["card_info"] == [568, "7000033/001", "7000031/001"]
    assert out["surface"] == [568, "7000023/001", "7000021/001"]
    assert out["padded"] is True  # CKM_RSA_PKCS pads the payload as given
    assert "1-245 bytes" in out["oversize"]
    assert out["7f21"] == ["0012345/000", True]  # PKCS#1 v1.5: the same bytes every time


ROTATION = """
from cardlib.cv_certificate import verify_cv_chain
from hsm.cv_hierarchy import CvHierarchy, rotate_cv_role, station_anchors
from hsm.roles import KeyRole
old = CvHierarchy.current(hsm)
out["version"] = rotate_cv_role(hsm, KeyRole.CV_CARD_INFO_CA)
new = CvHierarchy.current(hsm)
anchors = station_anchors(hsm)
out["anchors"] = len(anchors)
out["old"] = str(verify_cv_chain([old.card_info_certificate], anchors).holder)
out["new"] = str(verify_cv_chain([new.card_info_certificate], anchors).holder)
out["new_issuer"] = str(new.card_info_certificate.issuer)
out["mf_unchanged"] = new.mf_certificate.encode() == old.mf_certificate.encode()
out["again_noop"] = ensure_station_keys(hsm).created
"""


def test_rotation_keeps_old_certificates_verifying(tmp_path: Path) -> None:
    out = run(tmp_path, ROTATION)
    assert out == {"version": 2, "anchors": 4, "old": "7000031/001", "new": "7000031/002",
                   "new_issuer": "7000033/002", "mf_unchanged": True, "again_noop": False}


SWAPPED = """
from hsm.cv_hierarchy import CvHierarchy, certificate_label, stored_certificate
from hsm.data_objects import read_data, write_data
from hsm.errors import HsmError
from hsm.roles import KeyRole
surface = read_data(hsm, certificate_label(KeyRole.CV_SURFACE_SIGNER, 1))[0]
write_data(hsm, certificate_label(KeyRole.CV_CARD_INFO_SIGNER, 1), surface)
try:
    CvHierarchy.current(hsm)
    out["refused"] = False
except HsmError as exc:
    out["refused"] = str(exc)
"""


def test_a_swapped_certificate_object_is_refused(tmp_path: Path) -> None:
    """Attack: the card-info signer's stored certificate replaced by another valid one
    (the surface signer's): issuance must not write it to a card."""
    out = run(tmp_path, SWAPPED)
    assert "does not match the token's keys" in out["refused"]


def test_json_of_hsm_status_names_the_cv_key_ids(tmp_path: Path) -> None:
    out = run(tmp_path, "from hsm.keys import inventory\n"
                        "out['k'] = [k.as_json() for k in inventory(hsm)]")
    by_role = {k["role"]: k for k in out["k"]}
    assert by_role["cv-surface-signer"]["cv_key_id"] == "7000021/001"
    assert by_role["resident-issuing-ca"]["cv_key_id"] is None
    json.dumps(out)
