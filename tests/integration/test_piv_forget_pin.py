"""Issue 11, defect 2, the PIV half: every flow that verified the operator's PIN ends with
VERIFY ``00 20 FF 80`` (SP 800-73-4: reset the PIN's security status), also when it fails.

In process, so the card is never powered off between the steps: what locks the card
here is the forget-PIN command alone (the power-off at the end of a PC/SC connection is
tested through pcscd in tests/cli/test_cards_locked_after_use.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cardlib.apdu import split_response
from cardlib.channel import ApduChannel
from cardlib.constants import PivAlgorithm
from cardlib.emulator.piv_card import PivCard
from cardlib.emulator.state import StateFile
from cardlib.piv_objects import dynamic_auth
from tools.errors import LoginError
from tools.operators.enrolment import EnrolmentRequest, enrol_operator
from tools.operators.login import OperatorAuthenticator
from tools.rig.card_maker import manufacture_blank_operator_card
from tools.service.context import Station
from tools.station.pins import Pin

from ..helpers import ScriptedTransport
from ..operator_helpers import operator_station, registry_target

FORGET_PIN = bytes.fromhex("0020FF80")
PIN, PUK = Pin("135792"), Pin("24682468")


def sign_9a_without_pin(card: PivCard) -> int:
    template = dynamic_auth(response=b"", challenge=bytes(32))
    raw = bytes((0x00, 0x87, PivAlgorithm.ECC_P256, 0x9A, len(template))) + template + b"\x00"
    return int.from_bytes(card.process_apdu(raw)[-2:], "big")


def test_enrolment_and_login_end_with_forget_pin(rig_home: Path, tmp_path: Path) -> None:
    home = operator_station(rig_home, tmp_path / "station")
    station = Station(home, db=str(registry_target(home)))  # its own, also in the PG pass
    state = tmp_path / "op.json"
    manufacture_blank_operator_card(station.hsm, state)
    card = PivCard(StateFile(state).load())
    recorder = ScriptedTransport(lambda apdu: split_response(card.process_apdu(apdu)))
    channel = ApduChannel(recorder)
    enrol_operator(channel, station.hsm, station.registry,
                   EnrolmentRequest("op-forget", "Name of op-forget", "131016",
                                    frozenset({"verify"}), None, PivAlgorithm.ECC_P256),
                   PIN, PUK, None)
    assert recorder.sent[-1] == FORGET_PIN

    authenticator = OperatorAuthenticator(station.registry, station.hsm,
                                          station.home.operator_policy(),
                                          station_id=station.home.station_id())
    recorder.sent.clear()
    authenticator.authenticate(channel, PIN)
    verify = next(i for i, apdu in enumerate(recorder.sent) if apdu[:4] == bytes.fromhex("00200080"))
    assert recorder.sent[verify + 1][:2] == b"\x00\x87"  # the challenge, after the PIN
    assert recorder.sent[-1] == FORGET_PIN
    assert sign_9a_without_pin(card) == 0x6982  # same card session, no power-off: forgotten

    recorder.sent.clear()  # a login that fails after the PIN was verified
    authenticator.challenges.signed_here = lambda *args: False  # type: ignore[method-assign]
    with pytest.raises(LoginError, match="does not verify"):
        authenticator.authenticate(channel, PIN)
    assert recorder.sent[-1] == FORGET_PIN
    assert sign_9a_without_pin(card) == 0x6982
    assert card.piv.pins["80"].tries_left == 3  # forgetting spends no try
