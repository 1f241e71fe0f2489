"""The verifier's card-alone proof (issue 12 §4) against a card-info AP answering the real
card's bytes (RC §4.6), with a test anchor injected as an extra anchor; and the four
counterfeits of the issue, each refused."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from cardlib.channel import ApduChannel
from cardlib.constants import Aid
from cardlib.cv_certificate import (
    CvCertificate,
    KeyId,
    encode_card_rsa_key,
    make_cv_certificate,
)
from cardlib.digestinfo import prehashed_digest_info
from cardlib.errors import InvalidPinError
from cardlib.transport import InProcessTransport
from tools.resident.verifier import Verifier
from tools.station.pins import Pin
from tools.station.trust import EXTRA_HIERARCHY, TrustStore, _anchor

CA_ID = KeyId.parse("6100033/001")
SIGNER_ID = KeyId.parse("6100031/001")
SECRETS = {0x11: b"1234", 0x14: b"537686677188", 0x15: b"55021720352285"}
OPENS_0007 = {0x11, 0x14, 0x15}


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _sign(key: rsa.RSAPrivateKey, message: bytes) -> bytes:
    return key.sign(message, padding.PKCS1v15(), hashes.SHA256())


def _certify(ca: rsa.RSAPrivateKey, issuer: KeyId, holder: KeyId,
             key: rsa.RSAPublicKey) -> CvCertificate:
    from cardlib.cv_certificate import cv_body

    return make_cv_certificate(issuer, holder, key, _sign(ca, cv_body(issuer, holder, key)))


def _ef_0007(card_key: rsa.RSAPublicKey, signer: rsa.RSAPrivateKey) -> bytes:
    df51 = bytes.fromhex("DF51820109") + encode_card_rsa_key(card_key)
    df52 = bytes.fromhex("DF52820100") + _sign(signer, df51)
    return bytes.fromhex("FF50820213") + df51 + df52


@dataclass
class TextAp:
    """The card-info AP as RC §4.1/§4.6 measure it (EF 0004 free, EF 0007 behind any of
    the three credentials, 80 2A 00 00 with no credential). ``apdus`` keeps the wire."""

    files: dict[int, bytes]
    presence_key: rsa.RSAPrivateKey
    replay: bytes | None = None
    apdus: list[bytes] = field(default_factory=list)
    selected: bytes = b""
    ef: int | None = None
    verified: set[int] = field(default_factory=set)

    def process_apdu(self, apdu: bytes) -> bytes:
        self.apdus.append(apdu)
        cla, ins, p1, p2 = apdu[:4]
        data = apdu[5:5 + apdu[4]] if len(apdu) > 5 else b""
        if ins == 0xA4 and p1 == 0x04:
            if data != Aid.CARD_INFO:
                return b"\x6a\x82"
            self.selected, self.ef, self.verified = data, None, set()
            return b"\x90\x00"
        if ins == 0xA4 and p1 == 0x02:
            self.ef = int.from_bytes(data, "big")
            return b"\x90\x00" if self.ef in self.files or self.ef in SECRETS else b"\x6a\x82"
        if ins == 0x20:
            if data != SECRETS.get(self.ef or 0):
                return b"\x63\xc2"
            self.verified.add(self.ef or 0)
            return b"\x90\x00"
        if ins == 0xB0:
            if self.ef == 0x0007 and not self.verified & OPENS_0007:
                return b"\x69\x82"
            content = self.files[self.ef or 0]
            offset, length = (p1 << 8) | p2, apdu[4] or 256
            return content[offset:offset + length] + b"\x90\x00"
        if (cla, ins, p1, p2) == (0x80, 0x2A, 0, 0):
            if self.replay is not None:
                return self.replay + b"\x90\x00"
            found = prehashed_digest_info(data)
            assert found is not None
            algorithm, digest = found
            return self.presence_key.sign(digest, padding.PKCS1v15(),
                                          utils.Prehashed(algorithm)) + b"\x90\x00"
        return b"\x6d\x00"


class Challenges:
    """ChallengeBook's contract (issued once, redeemed once) without a token."""

    def __init__(self) -> None:
        self.outstanding: set[bytes] = set()
        self.issued: list[bytes] = []

    def issue(self, size: int = 32) -> bytes:
        challenge = secrets.token_bytes(size)
        self.outstanding.add(challenge)
        self.issued.append(challenge)
        return challenge

    def redeem(self, challenge: bytes) -> bool:
        if challenge in self.outstanding:
            self.outstanding.discard(challenge)
            return True
        return False


@pytest.fixture(scope="module")
def hierarchy() -> dict[str, rsa.RSAPrivateKey]:
    return {"ca": _key(), "signer": _key(), "card": _key(), "other": _key()}


def _card(h: dict[str, rsa.RSAPrivateKey], *, ca: str = "ca", signs_0007: str = "signer",
          presence: str = "card") -> TextAp:
    certificate = _certify(h[ca], CA_ID, SIGNER_ID, h["signer"].public_key())
    files = {0x0004: certificate.encode() + b"\xff" * 8,
             0x0007: _ef_0007(h["card"].public_key(), h[signs_0007])}
    return TextAp(files, h[presence])


def _verify(card: TextAp, h: dict[str, rsa.RSAPrivateKey], credential: str = "pin",
            offline: bool = False, challenges: Challenges | None = None):  # type: ignore[no-untyped-def]
    trust = TrustStore([_anchor(CA_ID, h["ca"].public_key(), EXTRA_HIERARCHY, "anchors.toml")],
                       sets=())
    verifier = Verifier(None, challenges or Challenges(), trust, [])  # type: ignore[arg-type]
    secret = {"pin": "1234", "a": "537686677188", "b": "55021720352285"}[credential]
    channel = ApduChannel(InProcessTransport(card))
    return verifier.verify(channel, (credential, Pin(secret)), offline=offline)


@pytest.mark.parametrize(("credential", "key"), [("pin", 0x11), ("a", 0x14), ("b", 0x15)])
def test_a_card_proves_itself_with_each_credential(hierarchy, credential: str, key: int) -> None:  # type: ignore[no-untyped-def]
    card = _card(hierarchy)
    verdict = _verify(card, hierarchy, credential)
    assert verdict.genuine, verdict.checks
    assert [c.name for c in verdict.checks] == [
        "applications", "cv_chain", "credential", "signed_key", "presence"]
    assert verdict.anchor == {"key_id": "6100033/001", "hierarchy": "extra",
                              "source": "anchors.toml"}
    assert verdict.chain == ["6100033/001", "6100031/001", "DF51 (EF 0007)"]
    assert not verdict.ours and {s["name"] for s in verdict.skipped} == {
        "card_record", "certificate", "registry_status"}
    # on the wire: one VERIFY of the chosen key, and 80 2A 00 00 with a SHA-256 DigestInfo
    verifies = [i for i, a in enumerate(card.apdus) if a[1] == 0x20]
    assert len(verifies) == 1
    assert card.apdus[verifies[0] - 1] == bytes.fromhex("00A4020C02") + key.to_bytes(2, "big")
    [sign] = [a for a in card.apdus if a[:4] == bytes.fromhex("802A0000")]
    assert sign[4] == 0x33 and sign[5:24] == bytes.fromhex("3031300d060960864801650304020105000420")
    assert sign[-1] == 0x00


def test_the_challenge_is_fresh_and_hashed(hierarchy) -> None:  # type: ignore[no-untyped-def]
    card, challenges = _card(hierarchy), Challenges()
    _verify(card, hierarchy, challenges=challenges)
    [sign] = [a for a in card.apdus if a[:4] == bytes.fromhex("802A0000")]
    assert sign[24:56] == hashlib.sha256(challenges.issued[-1]).digest()
    assert not challenges.outstanding  # redeemed


def test_offline_is_said_in_the_json(hierarchy) -> None:  # type: ignore[no-untyped-def]
    verdict = _verify(_card(hierarchy), hierarchy, offline=True).as_json()
    assert verdict["offline"] is True and verdict["genuine"] is True
    assert {s["reason"] for s in verdict["skipped"]} == {"offline"}


def test_a_wrong_credential_is_an_error_not_a_verdict(hierarchy) -> None:  # type: ignore[no-untyped-def]
    card = _card(hierarchy)
    trust = TrustStore([_anchor(CA_ID, hierarchy["ca"].public_key(), EXTRA_HIERARCHY, "x")], ())
    verifier = Verifier(None, Challenges(), trust, [])  # type: ignore[arg-type]
    with pytest.raises(InvalidPinError) as info:
        verifier.verify(ApduChannel(InProcessTransport(card)), ("pin", Pin("9999")))
    assert info.value.tries_left == 2 and "9999" not in str(info.value)


# ---- the counterfeits (issue 12 §4): each attack fails --------------------------------

def test_attack_a_copy_with_another_presence_key_is_refused(hierarchy) -> None:  # type: ignore[no-untyped-def]
    """Every file of a genuine card copied, but 0013 is the forger's own key."""
    verdict = _verify(_card(hierarchy, presence="other"), hierarchy)
    assert not verdict.genuine
    assert {c.name: c.ok for c in verdict.checks}["presence"] is False
    assert {c.name: c.ok for c in verdict.checks}["signed_key"] is True


def test_attack_b_an_unanchored_hierarchy_is_refused_before_the_credential(hierarchy) -> None:  # type: ignore[no-untyped-def]
    """A self-made CA (same key ID as the anchor, its own key) signs EF 0004; EF 0007 and
    the presence key are consistent under it. The credential is never presented."""
    h = dict(hierarchy)
    forger = _key()
    card = _card(h | {"forger": forger}, ca="forger")
    verdict = _verify(card, hierarchy)
    assert not verdict.genuine and verdict.anchor is None
    assert [(c.name, c.ok) for c in verdict.checks][-1] == ("cv_chain", False)
    assert not any(a[1] == 0x20 for a in card.apdus)  # no VERIFY: no credential leaked
    unknown = _card(hierarchy)
    other_id = KeyId.parse("6100099/001")
    unknown.files[0x0004] = _certify(forger, other_id, SIGNER_ID,
                                     hierarchy["signer"].public_key()).encode()
    verdict = _verify(unknown, hierarchy)
    assert not verdict.genuine and "not a trust anchor" in verdict.checks[-1].detail


@pytest.mark.parametrize("number", ["6100023", "6100020"])
def test_attack_b_ef_0004_from_an_anchor_of_another_role_is_refused(hierarchy, number: str) -> None:  # type: ignore[no-untyped-def]
    """EF 0004 issued by a trusted anchor of the wrong role (a surface CA x000023 or the
    MF root x000020 in the same store), everything else consistent: the card-info chain
    must start at a card-info CA (x000033); refused before the credential."""
    wrong_id = KeyId.parse(f"{number}/001")
    card = _card(hierarchy)
    card.files[0x0004] = _certify(hierarchy["other"], wrong_id, SIGNER_ID,
                                  hierarchy["signer"].public_key()).encode()
    trust = TrustStore([_anchor(CA_ID, hierarchy["ca"].public_key(), EXTRA_HIERARCHY, "x"),
                        _anchor(wrong_id, hierarchy["other"].public_key(), EXTRA_HIERARCHY,
                                "x")], sets=())
    verifier = Verifier(None, Challenges(), trust, [])  # type: ignore[arg-type]
    verdict = verifier.verify(ApduChannel(InProcessTransport(card)), ("pin", Pin("1234")))
    assert not verdict.genuine and verdict.anchor is None
    assert [(c.name, c.ok) for c in verdict.checks][-1] == ("cv_chain", False)
    assert "not a card-info CA" in verdict.checks[-1].detail
    assert not any(a[1] == 0x20 for a in card.apdus)  # no VERIFY: no credential leaked


def test_attack_e_a_foreign_card_claiming_a_station_serial_is_refused(  # type: ignore[no-untyped-def]
        hierarchy, monkeypatch) -> None:
    """A card genuine under an extra (or published) anchor whose unsigned 共通AP record
    names a serial of this station's registry: trusting the claim would record the read
    against that card's resident. Refused before the credential; a serial the registry
    does not know, or --offline, leaves the card-alone verdict as it was."""
    import datetime as dt

    from cardlib.records import CardInfoRecord

    claimed = CardInfoRecord("100000000000017", "131016", dt.date(2035, 2, 17))
    monkeypatch.setattr(Verifier, "_common_record", staticmethod(lambda _channel: claimed))

    class Registry:
        def __init__(self, known: set[str]) -> None:
            self.known = known

        def get(self, serial: str) -> object | None:
            return object() if serial in self.known else None

    trust = TrustStore([_anchor(CA_ID, hierarchy["ca"].public_key(), EXTRA_HIERARCHY, "x")], ())

    def verify(known: set[str], offline: bool = False):  # type: ignore[no-untyped-def]
        card = _card(hierarchy)
        verifier = Verifier(Registry(known), Challenges(), trust, [])  # type: ignore[arg-type]
        verdict = verifier.verify(ApduChannel(InProcessTransport(card)), ("pin", Pin("1234")),
                                  offline=offline)
        return verdict, card

    verdict, card = verify({claimed.card_serial})
    assert not verdict.genuine and not verdict.ours
    assert (verdict.checks[-1].name, verdict.checks[-1].ok) == ("card_record", False)
    assert "of this station's registry" in verdict.checks[-1].detail
    assert not any(a[1] == 0x20 for a in card.apdus)  # no VERIFY: no credential presented
    assert verify(set())[0].genuine
    assert verify({claimed.card_serial}, offline=True)[0].genuine


def test_attack_c_ef_0007_signed_by_an_anchored_but_wrong_key(hierarchy) -> None:  # type: ignore[no-untyped-def]
    """DF52 made by the anchor's key itself instead of the EF 0004 holder key."""
    verdict = _verify(_card(hierarchy, signs_0007="ca"), hierarchy)
    assert not verdict.genuine
    assert {c.name: c.ok for c in verdict.checks}["signed_key"] is False
    assert "presence" not in {c.name for c in verdict.checks}


def test_attack_d_a_replayed_presence_signature_is_refused(hierarchy) -> None:  # type: ignore[no-untyped-def]
    """A relay records a genuine card's answer and plays it back to the next challenge."""
    genuine = _card(hierarchy)
    assert _verify(genuine, hierarchy).genuine
    [sign] = [a for a in genuine.apdus if a[:4] == bytes.fromhex("802A0000")]
    recorded = hierarchy["card"].sign(sign[5:5 + sign[4]][-32:], padding.PKCS1v15(),
                                      utils.Prehashed(hashes.SHA256()))
    replayer = _card(hierarchy)
    replayer.replay = recorded
    verdict = _verify(replayer, hierarchy)
    assert not verdict.genuine and not {c.name: c.ok for c in verdict.checks}["presence"]


# ---- the same against the in-process emulator, personalised as issuance does ------------

@pytest.fixture(scope="module")
def emulated(hierarchy):  # type: ignore[no-untyped-def]
    """A card personalised in process: EF 0004 by the test CA, 0013 generated on the card,
    EF 0007 over it by the test signer, the three credentials; locked."""
    from cardlib.apps.base import WritableApSession
    from cardlib.apps.issuer import IssuerSession
    from cardlib.card_info_records import encode_signed_key
    from cardlib.constants import CardInfoFile
    from tests.helpers import card_channel, personalising

    card, channel = card_channel()
    secure = personalising(channel)
    info = WritableApSession(secure, Aid.CARD_INFO)
    info.select()
    certificate = _certify(hierarchy["ca"], CA_ID, SIGNER_ID, hierarchy["signer"].public_key())
    info.write_file(CardInfoFile.CV_CERTIFICATE, certificate.encode())
    presence = info.generate_rsa_key(CardInfoFile.PRESENCE_KEY)
    info.write_file(CardInfoFile.SIGNED_KEY,
                    encode_signed_key(presence, lambda m: _sign(hierarchy["signer"], m)))
    for fid, value in SECRETS.items():
        info.set_pin(fid, value.decode())
    issuer = IssuerSession(secure)
    issuer.select()
    issuer.lock()
    return card


@pytest.mark.parametrize("credential", ["pin", "a", "b"])
def test_the_emulated_card_proves_itself(emulated, hierarchy, credential: str) -> None:  # type: ignore[no-untyped-def]
    emulated.power_on()
    verdict = _verify(emulated, hierarchy, credential, offline=True)
    assert verdict.genuine, verdict.checks
    assert verdict.chain == ["6100033/001", "6100031/001", "DF51 (EF 0007)"]


def test_the_emulated_card_with_another_presence_key_is_refused(emulated, hierarchy) -> None:  # type: ignore[no-untyped-def]
    from cardlib.constants import CardInfoFile
    from cardlib.emulator.resident_card_os import ResidentCardOs
    from cardlib.emulator.state import CardState

    state = CardState.from_json(emulated.state.to_json())
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    state.apps[Aid.CARD_INFO.hex()].keys[f"{CardInfoFile.PRESENCE_KEY:04X}"] = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode("ascii")
    clone = ResidentCardOs(state)
    clone.power_on()
    verdict = _verify(clone, hierarchy)
    assert not verdict.genuine and [c.name for c in verdict.checks if not c.ok] == ["presence"]
