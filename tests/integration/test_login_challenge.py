"""Issue 11 §11: the login challenge is bound to the station and the purpose.

The card signs SHA-256("juki operator login v1" 00 ‖ station ID ‖ purpose ‖ token nonce)
(tools/operators/challenge.py). The attack: a relay between the station and a genuine,
PIN-verified operator card gets the card to sign the challenge minted for another
station (or for another purpose) with the very nonce this station issued, and hands
that signature back. The station recomputes the message with its own ID and the purpose
it asked for, so the signature does not verify: refused, and counted as a failed login.
The card, the token, the enrolment and the check are all real (in process)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from cardlib.apdu import split_response
from cardlib.channel import ApduChannel
from cardlib.constants import PivAlgorithm
from cardlib.emulator.piv_card import PivCard
from cardlib.emulator.state import StateFile
from tools.errors import LoginError
from tools.operators.challenge import LoginChallenges, LoginPurpose, bound_message
from tools.operators.enrolment import EnrolmentRequest, enrol_operator
from tools.operators.login import OperatorAuthenticator
from tools.rig.card_maker import manufacture_blank_operator_card
from tools.service.context import Station
from tools.station.pins import Pin

from ..helpers import ScriptedTransport
from ..operator_helpers import operator_station, registry_target

PIN, PUK = Pin("135792"), Pin("24682468")
GENERAL_AUTHENTICATE_9A = (0x87, 0x9A)  # INS, P2


@pytest.fixture
def enrolled(rig_home: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    home = operator_station(rig_home, tmp_path / "station")
    station = Station(home, db=str(registry_target(home)))  # its own, also in the PG pass
    state = tmp_path / "op.json"
    manufacture_blank_operator_card(station.hsm, state)
    card = PivCard(StateFile(state).load())
    channel = ApduChannel(ScriptedTransport(lambda apdu: split_response(card.process_apdu(apdu))))
    enrol_operator(channel, station.hsm, station.registry,
                   EnrolmentRequest("op-bound", "Name of op-bound", "131016",
                                    frozenset({"verify"}), None, PivAlgorithm.ECC_P256),
                   PIN, PUK, None)
    return station, card


def relaying(card: PivCard, minted: list[tuple[bytes, bytes]], station_id: str | None,
             purpose: LoginPurpose) -> ApduChannel:
    """A channel whose relay swaps the digest the station asked the card to sign for the
    digest of the message minted, with the same nonce, for ``station_id``/``purpose``."""
    def answer(apdu: bytes) -> tuple[bytes, int]:
        if (apdu[1], apdu[3]) == GENERAL_AUTHENTICATE_9A and minted:
            nonce, message = minted[-1]
            other = bound_message(station_id or "", purpose.value, nonce)
            asked, forged = hashlib.sha256(message).digest(), hashlib.sha256(other).digest()
            assert asked in apdu
            apdu = apdu.replace(asked, forged)
        return split_response(card.process_apdu(apdu))

    return ApduChannel(ScriptedTransport(answer))


def spy_on_mint(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bytes, bytes]]:
    minted: list[tuple[bytes, bytes]] = []
    mint = LoginChallenges.mint

    def spy(self: LoginChallenges, purpose: LoginPurpose) -> tuple[bytes, bytes]:
        minted.append(mint(self, purpose))
        return minted[-1]

    monkeypatch.setattr(LoginChallenges, "mint", spy)
    return minted


@pytest.mark.parametrize("other", ["station", "purpose"])
def test_a_signature_minted_for_another_station_or_purpose_is_refused(
        enrolled, monkeypatch: pytest.MonkeyPatch, other: str) -> None:  # type: ignore[no-untyped-def]
    station, card = enrolled
    here = station.home.station_id()
    authenticator = OperatorAuthenticator(station.registry, station.hsm,
                                          station.home.operator_policy(), station_id=here)
    minted = spy_on_mint(monkeypatch)
    target = ("station-elsewhere", LoginPurpose.SESSION) if other == "station" else (
        here, LoginPurpose.PAM)
    with pytest.raises(LoginError, match="does not verify"):
        authenticator.authenticate(relaying(card, minted, *target), PIN)
    failures = station.registry.connection().execute(
        "SELECT reason FROM login_failures WHERE operator_id = 'op-bound'").fetchall()
    assert failures == [("bad challenge signature",)]

    # the same card, relayed faithfully, logs in: the binding, not the card, refused it
    assert authenticator.authenticate(relaying(card, minted, here, LoginPurpose.SESSION),
                                      PIN).operator_id == "op-bound"
    # and a PAM login asks for (and accepts) a PAM-bound signature only
    with pytest.raises(LoginError, match="purpose pam"):
        authenticator.authenticate(relaying(card, minted, here, LoginPurpose.SESSION), PIN,
                                   "op-bound", LoginPurpose.PAM)


def test_a_nonce_is_accepted_once_and_only_for_its_station(enrolled) -> None:  # type: ignore[no-untyped-def]
    station, _card = enrolled
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    here = LoginChallenges(station.hsm, "station-A")
    there = LoginChallenges(station.hsm, "station-B")
    nonce, message = here.mint(LoginPurpose.SESSION)
    assert message == bound_message("station-A", "station-session", nonce)
    signature = key.sign(message, ec.ECDSA(hashes.SHA256()))
    assert not there.redeem(nonce)  # minted by another station's book
    assert not there.signed_here(nonce, LoginPurpose.SESSION, key.public_key(), signature)
    assert here.redeem(nonce) and not here.redeem(nonce)  # single use
    assert here.signed_here(nonce, LoginPurpose.SESSION, key.public_key(), signature)
    assert not here.signed_here(nonce, LoginPurpose.PAM, key.public_key(), signature)
