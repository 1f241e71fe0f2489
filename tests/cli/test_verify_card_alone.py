"""`juki verify` from the card alone (issue 12 §4) on the rig: each credential, --offline,
a card of another hierarchy through an extra anchor, `juki trust list`, and the
counterfeits (emulator state edited by the test), each refused."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from cardlib.card_info_records import decode_signed_key, encode_signed_key
from cardlib.constants import Aid, CardInfoFile, CommonFile
from cardlib.cv_certificate import KeyId, cv_body, decode_cv_certificate, make_cv_certificate
from cardlib.emulator.state import CardState, StateFile
from cardlib.records import CardInfoRecord, decode_card_info_record, encode_card_info_record
from tools.station.home import StationHome

from ..conftest import juki
from .rig_cards import issue_own_yamada_card

PIN = "7319"
CARD_INFO = Aid.CARD_INFO.hex()
CARD_CHECKS = ["applications", "cv_chain", "credential", "signed_key", "presence"]
REGISTRY_CHECKS = ["card_record", "certificate", "registry_status"]
TEST_CA = KeyId.parse("6100033/001")
TEST_SIGNER = KeyId.parse("6100031/001")


def _private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


def _sign(key: rsa.RSAPrivateKey) -> Callable[[bytes], bytes]:
    return lambda message: key.sign(message, padding.PKCS1v15(), hashes.SHA256())


def _files(tmp_path: Path, card: dict) -> Path:  # type: ignore[type-arg]
    path = tmp_path / "creds.txt"
    path.write_text(f"card_info={PIN}\njpki_auth=2468\njpki_sign=SIGN2026\n"
                    f"collation_a={card['number']}\ncollation_b={card['b']}\n")
    os.chmod(path, 0o600)
    return path


@pytest.fixture
def card(rig_home: Path, tmp_path: Path) -> dict[str, object]:
    """A Yamada card of its own (new record code and individual number) in slot 0."""
    state = tmp_path / "card.json"
    card: dict[str, object] = {**issue_own_yamada_card(rig_home, tmp_path, state, PIN),
                               "state": state}
    card["creds"] = _files(tmp_path, card)
    return card


def verify(home: Path, *args: str, check: int = 0, stdin: str | None = f"{PIN}\n") -> dict:  # type: ignore[type-arg]
    return json.loads(juki(home, "verify", "--json", *args, input=stdin, check=check).stdout)


def failed(verdict: dict) -> list[str]:  # type: ignore[type-arg]
    return [c["name"] for c in verdict["checks"] if not c["ok"]]


def insert_edited(home: Path, source: Path, destination: Path,
                  edit: Callable[[CardState], None]) -> None:
    state = StateFile(source).load()
    edit(state)
    StateFile(destination).save(state)
    juki(home, "rig", "insert", "--slot", "0", "--state", str(destination))


def _foreign_serial(state: CardState) -> None:
    """The 共通AP record of a card no registry of ours knows (a real card, say)."""
    ef = state.apps[Aid.COMMON.hex()].files[f"{CommonFile.CARD_INFO_RECORD:04X}"]
    assert ef.records
    record = decode_card_info_record(bytes.fromhex(ef.records[0]))
    ef.records[0] = encode_card_info_record(CardInfoRecord(
        "999999999999999", record.municipality_code, record.expiry)).hex()


def put_file(state: CardState, fid: int, content: bytes) -> None:
    ef = state.apps[CARD_INFO].files[f"{fid:04X}"]
    size = len(ef.content)
    assert len(content) <= size
    ef.data = (content + b"\xff" * (size - len(content))).hex()


def insert_card_info_chain_under(home: Path, card: dict, destination: Path,  # type: ignore[type-arg]
                                 ca: rsa.RSAPrivateKey, issuer: KeyId, holder: KeyId) -> None:
    """Insert a copy of ``card`` whose card-info AP is consistent under ``ca``: EF 0004
    certifies a fresh signer (``holder``, issued by ``issuer``, signed by ``ca``), EF 0007
    carries a fresh presence key signed by that signer, key 0013 is that presence key."""
    signer, presence = (rsa.generate_private_key(public_exponent=65537, key_size=2048)
                        for _ in range(2))
    body = cv_body(issuer, holder, signer.public_key())
    certificate = make_cv_certificate(issuer, holder, signer.public_key(), _sign(ca)(body))

    def edit(state: CardState) -> None:
        put_file(state, CardInfoFile.CV_CERTIFICATE, certificate.encode())
        put_file(state, CardInfoFile.SIGNED_KEY,
                 encode_signed_key(presence.public_key(), _sign(signer)))
        state.apps[CARD_INFO].keys[f"{CardInfoFile.PRESENCE_KEY:04X}"] = _private_pem(presence)

    insert_edited(home, Path(card["state"]), destination, edit)


@contextmanager
def trust_settings(home: Path, trust: dict[str, object]) -> Iterator[None]:
    station = StationHome(home)
    before = station.settings()
    station.write_settings(before | {"trust": trust})
    try:
        yield
    finally:
        station.write_settings(before)


# ---- a genuine card ----------------------------------------------------------------------

@pytest.mark.parametrize("credential", ["pin", "a", "b"])
def test_our_card_proves_itself_with_each_credential(rig_home: Path, card: dict,  # type: ignore[type-arg]
                                                     credential: str) -> None:
    verdict = verify(rig_home, "--with", credential, "--pin-file", str(card["creds"]))
    assert verdict["genuine"] is True and verdict["card_serial"] == card["serial"]
    assert verdict["ours"] is True and verdict["offline"] is False and verdict["skipped"] == []
    assert verdict["anchor"] == {"key_id": "7000033/001", "hierarchy": "station (token)",
                                 "source": "station"}
    assert verdict["chain"] == ["7000033/001", "7000031/001", "DF51 (EF 0007)"]
    assert [c["name"] for c in verdict["checks"]] == [
        "applications", "cv_chain", *REGISTRY_CHECKS, "credential", "signed_key", "presence"]
    label = {"pin": "card-info PIN", "a": "照合番号A", "b": "照合番号B"}[credential]
    assert next(c for c in verdict["checks"] if c["name"] == "credential")["detail"] == (
        f"{label} verified")


def test_the_pin_from_stdin_and_the_text_verdict(rig_home: Path, card: dict) -> None:  # type: ignore[type-arg]
    text = juki(rig_home, "verify", input=f"{PIN}\n").stdout
    assert text.startswith(f"GENUINE: card {card['serial']}")
    assert "anchor: 7000033/001 (station (token)); chain: 7000033/001 -> 7000031/001" in text
    assert PIN not in text


def test_offline_skips_the_registry_and_says_so(rig_home: Path, card: dict) -> None:  # type: ignore[type-arg]
    juki(rig_home, "card", "suspend", str(card["serial"]), "--reason", "test")
    assert failed(verify(rig_home, check=1)) == ["registry_status"]
    verdict = verify(rig_home, "--offline")
    assert verdict["genuine"] is True and verdict["offline"] is True
    assert [c["name"] for c in verdict["checks"]] == CARD_CHECKS
    assert verdict["skipped"] == [{"name": n, "reason": "offline"} for n in REGISTRY_CHECKS]
    assert "[skipped] registry_status: offline" in juki(
        rig_home, "verify", "--offline", input=f"{PIN}\n").stdout


def test_a_wrong_credential_is_an_error_with_tries_left(rig_home: Path, card: dict) -> None:  # type: ignore[type-arg]
    result = juki(rig_home, "verify", "--json", input="0000\n", check=3)
    error = json.loads(result.stdout)["error"]
    assert error["type"] == "InvalidPinError" and error["tries_left"] == 2
    assert "0000" not in result.stdout + result.stderr


# ---- a card of another hierarchy: the chain logic with an injected anchor ----------------

def test_a_card_under_an_extra_anchor_is_genuine_from_the_card_alone(
        rig_home: Path, card: dict, tmp_path: Path) -> None:  # type: ignore[type-arg]
    """What a real card is to us: a chain to an anchor we did not make, no registry row.
    (A chain to a published J-LIS anchor cannot be made without J-LIS keys.)"""
    ca = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    insert_card_info_chain_under(rig_home, card, tmp_path / "foreign.json", ca, TEST_CA,
                                 TEST_SIGNER)
    verdict = verify(rig_home, check=1)
    assert failed(verdict) == ["cv_chain"] and "not a trust anchor" in verdict["checks"][-1]["detail"]
    anchors = rig_home / "test-anchors.toml"  # a configured path must be trusted: not in /tmp
    anchors.write_text(f'[[anchor]]\nkey_id = "{TEST_CA}"\n'
                       f'modulus = "{ca.public_key().public_numbers().n:0512X}"\nname = "test"\n')
    with trust_settings(rig_home, {"anchors": ["jlis-production", "station"],
                                   "extra": str(anchors)}):
        # attack (e): its 共通AP record still names our card's serial: refused, never
        # recorded against our resident (and no credential presented)
        claims_ours = verify(rig_home, check=1)
        foreign = tmp_path / "foreign.json"
        insert_edited(rig_home, foreign, tmp_path / "foreign-serial.json", _foreign_serial)
        verdict = verify(rig_home)
        listed = json.loads(juki(rig_home, "trust", "list", "--json").stdout)
    anchors.unlink()
    assert failed(claims_ours) == ["card_record"] and claims_ours["ours"] is False
    assert "of this station's registry" in claims_ours["checks"][-1]["detail"]
    assert verdict["genuine"] is True and verdict["ours"] is False
    assert verdict["anchor"] == {"key_id": "6100033/001", "hierarchy": "extra",
                                 "source": str(anchors)}
    assert verdict["skipped"] == [{"name": n, "reason": "not one of this station's cards"}
                                  for n in REGISTRY_CHECKS]
    assert {a["key_id"]: a["hierarchy"] for a in listed["anchors"]}["6100033/001"] == "extra"


def test_trust_list(rig_home: Path) -> None:
    listed = json.loads(juki(rig_home, "trust", "list", "--json").stdout)
    assert listed["sets"] == {"jlis-production": True, "jpki-test": False, "station": True}
    by_id = {a["key_id"]: a for a in listed["anchors"]}
    assert {"5000020/001 (A8)", "5000023/001", "5000033/001", "7000020/001", "7000023/001",
            "7000033/001"} <= set(by_id)
    assert not any(k.startswith("6") for k in by_id)
    assert by_id["5000033/001"]["modulus_sha256"] == (
        "409655d477547d83cbe182385acb1ea83c9828eb6e5b8bba90957c339b5f30f7")
    assert by_id["7000033/001"]["source"] == "station"
    text = juki(rig_home, "trust", "list").stdout
    assert text.startswith("sets: jlis-production, station") and "5000020/001 (A8)" in text


# ---- counterfeits: each refused, with and without the registry -------------------------

def test_a_clone_with_fresh_keys_is_refused_online_and_offline(rig_home: Path, card: dict,  # type: ignore[type-arg]
                                                               tmp_path: Path) -> None:
    fake = tmp_path / "fake.json"
    juki(rig_home, "emulator", "counterfeit", "--from", str(card["state"]), "--to", str(fake))
    juki(rig_home, "rig", "insert", "--slot", "0", "--state", str(fake))
    assert failed(verify(rig_home, check=1)) == ["certificate", "presence"]
    assert failed(verify(rig_home, "--offline", check=1)) == ["presence"]


def test_attack_a_copy_with_another_presence_key(rig_home: Path, card: dict,  # type: ignore[type-arg]
                                                 tmp_path: Path) -> None:
    def edit(state: CardState) -> None:
        state.apps[CARD_INFO].keys[f"{CardInfoFile.PRESENCE_KEY:04X}"] = _private_pem(
            rsa.generate_private_key(public_exponent=65537, key_size=2048))

    insert_edited(rig_home, Path(card["state"]), tmp_path / "other-0013.json", edit)
    assert failed(verify(rig_home, check=1)) == ["presence"]
    assert failed(verify(rig_home, "--offline", check=1)) == ["presence"]


def test_attack_b_an_unanchored_hierarchy_never_sees_the_credential(
        rig_home: Path, card: dict, tmp_path: Path) -> None:  # type: ignore[type-arg]
    """A self-made CA under our own CA's key ID signs EF 0004; EF 0007 and 0013 are
    consistent under it. Refused at the chain: even a wrong PIN is never sent."""
    own_ca = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    original = decode_cv_certificate(StateFile(Path(card["state"])).load()
                                     .apps[CARD_INFO].files["0004"].content)
    insert_card_info_chain_under(rig_home, card, tmp_path / "own-ca.json", own_ca,
                                 original.issuer, original.holder)
    for offline in ([], ["--offline"]):
        verdict = verify(rig_home, *offline, check=1, stdin="0000\n")
        assert failed(verdict) == ["cv_chain"] and verdict["anchor"] is None
    status = json.loads(juki(rig_home, "card", "pin", "status", "--json").stdout)
    assert status["card_info"]["tries_left"] == 3  # the wrong PIN never reached the card


def test_attack_c_ef_0007_signed_by_an_anchored_but_wrong_key(
        rig_home: Path, card: dict, station, tmp_path: Path) -> None:  # type: ignore[no-untyped-def,type-arg]
    """EF 0007 re-signed in the token by our card-info CA (an anchor itself) instead of
    the signer EF 0004 certifies."""
    from hsm.cv_hierarchy import CvSigner
    from hsm.roles import KeyRole

    ca = CvSigner.of(station.hsm, KeyRole.CV_CARD_INFO_CA, 1)
    state = StateFile(Path(card["state"])).load()
    signed = decode_signed_key(state.apps[CARD_INFO].files["0007"].content)

    def edit(state: CardState) -> None:
        put_file(state, CardInfoFile.SIGNED_KEY, encode_signed_key(signed.key_object, ca.sign))

    insert_edited(rig_home, Path(card["state"]), tmp_path / "wrong-signer.json", edit)
    for offline in ([], ["--offline"]):
        assert failed(verify(rig_home, *offline, check=1)) == ["signed_key"]


@pytest.mark.parametrize(("credential", "what", "secure"), [
    ("pin", "all", False), ("a", "number", False), ("b", "identity", True)])
def test_card_read_presents_its_credential_once(rig_home: Path, card: dict, credential: str,  # type: ignore[type-arg]
                                                what: str, secure: bool) -> None:
    """The card proves itself with the credential the read presents: one VERIFY with
    data (no second try), the read follows in the same selection of the AP."""
    args = ["-vvv", "card", "read", "--recipient", "NENKIN", "--purpose", "B1-57", "--with",
            credential, "--what", what, "--pin-file", str(card["creds"]), "--json"]
    result = juki(rig_home, *args, *(["--secure"] if secure else []))
    verifies = [line for line in result.stderr.splitlines()
                if ">> 00 20 00" in line and "redacted" in line]
    expected = 2 if secure else 1  # --secure: the PIN in the clear, then B under SM
    assert len(verifies) == expected, verifies
    assert "provision_entry" in json.loads(result.stdout)
    assert PIN.encode().hex() not in result.stderr.lower()  # the VERIFY data is redacted
