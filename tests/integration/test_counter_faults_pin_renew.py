"""PIN reset and renewal are atomic under faults (issue 13 §3, §4). For every APDU index
k the card fails at k (pulled out, or its answer garbled), and the token fails at every
PKCS#11 section.

PIN reset: afterwards the reset is done (the new PIN verifies and the old one not, the
journal ``done``, one ``pin-reset`` event) or it did not happen (the old PIN verifies,
no ``pin-reset`` event): settled ``rolled-back`` at once when RESET RETRY COUNTER never
left the host, or left ``interrupted`` once it did and rolled back by `juki issue
recover` with the note "may or may not have been reset" -- the only way a reset card
ends up without its ``pin-reset`` event, and exactly when the card may hold the new PIN.
The other PINs' retry counters never move.

Renewal: afterwards done, or open and finished by recover; then both JPKI keys on the
card sign a fresh challenge (after VERIFY) under the certificate in their EF, which
chains to the token's CA, and the registry holds exactly those two valid and every
earlier one revoked ``renewed``. One card serves every run of a test."""

from __future__ import annotations

import hashlib
import itertools
import json
import os

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from cardlib.apps.base import ApplicationSession
from cardlib.apps.jpki import JpkiApSession, JpkiKey
from cardlib.channel import ApduChannel
from cardlib.constants import Ins
from cardlib.errors import CardError, InvalidPinError
from cardlib.transport import InProcessTransport
from hsm.errors import HsmError
from tests.helpers import FaultyTransport
from tools.counter.card_session import PIN_TARGETS
from tools.counter.pin_reset import CONFIRMED, ROLLED_BACK_NOTE, reset_pin
from tools.counter.recovery import recover_operation
from tools.counter.renewal import KINDS, plan_renewal, renew_certificates
from tools.errors import JukiError
from tools.issuance.jpki_certs import JpkiSigners
from tools.issuance.recovery import this_process
from tools.station.pins import Pin

from .counter_cards import PINS, channel, issued_card
from .test_counter_faults import pooled_card_keys  # noqa: F401 (the module's key pool)
from .test_issuance_faults import InjectedFaults

ISSUED = {"card-info": "1111", "jpki-auth": "2222", "jpki-sign": "SIGN3333", "juki": "1111",
          "common": "1111"}
WRONG = {"card-info": "0000", "jpki-auth": "0000", "jpki-sign": "WRONG000", "juki": "0000",
         "common": "0000"}
FRESH = {"card-info": "{:04d}", "jpki-sign": "RESET{}SIGN"}  # a new value each attempt
DOCUMENT = "passport"
CAUGHT = (CardError, HsmError, JukiError)


def events(station, serial: str, name: str) -> list[dict]:  # type: ignore[no-untyped-def]
    rows = station.registry.connection().execute(
        "SELECT entry FROM provision_log WHERE kind = 'event' ORDER BY idx").fetchall()
    return [e for e in (json.loads(r[0]) for r in rows)
            if e["event"] == name and e["card_serial"] == serial]


def last_operation(station, serial: str):  # type: ignore[no-untyped-def]
    row = station.registry.connection().execute(
        "SELECT MAX(id) FROM card_operations WHERE card_serial = ?", (serial,)).fetchone()
    return station.registry.operation(int(row[0]))


def pin_tries(card) -> dict[str, int | None]:  # type: ignore[no-untyped-def]
    """Every resident PIN's retry counter (empty VERIFY: no try spent)."""
    link = channel(card)
    tries = {}
    for name, (aid, fid) in PIN_TARGETS.items():
        ap = ApplicationSession(link, aid)
        ap.select()
        tries[name] = ap.pin_status(fid).tries_left
    return tries


def verifies(card, target: str, value: str) -> bool:  # type: ignore[no-untyped-def]
    aid, fid = PIN_TARGETS[target]
    ap = ApplicationSession(channel(card), aid)
    ap.select()
    try:
        ap.verify_pin(value, fid)
    except InvalidPinError:
        return False
    return True


class Resetting:
    """One card whose ``target`` PIN is reset again and again; the other PINs one try
    down, so a reset that touched one of them would show."""

    def __init__(self, station, target: str) -> None:  # type: ignore[no-untyped-def]
        self.station, self.target = station, target
        self.card, _code = issued_card(station)
        self.serial = self.card.state.serial
        self.value = ISSUED[target]
        self.fresh = (FRESH[target].format(n) for n in itertools.count(4821))
        for other in PIN_TARGETS:
            if other != target:
                assert not verifies(self.card, other, WRONG[other])
        self.others = self.other_tries()

    def other_tries(self) -> dict[str, int | None]:
        return {k: v for k, v in pin_tries(self.card).items() if k != self.target}

    def attempt(self, transport, new: str) -> bool:  # type: ignore[no-untyped-def]
        self.card.power_on()
        try:
            reset_pin(ApduChannel(transport), self.station.hsm, self.station.registry,
                      self.serial, self.target, Pin(new), DOCUMENT, "forgotten",
                      this_process())
        except CAUGHT:
            return False
        return True

    def counts(self) -> tuple[int, int]:
        return (len(events(self.station, self.serial, "pin-reset")),
                len(events(self.station, self.serial, "operation-rolled-back")))

    def outcome(self, new: str, done: bool, before: tuple[int, int]) -> str:
        """Check card, journal and events after an attempt; recover an interrupted one.
        Returns ``done``, ``rolled-back`` (at once), ``recovered`` (the note given, the
        card not reset) or ``reset-recovered`` (the note given, the card reset)."""
        operation = last_operation(self.station, self.serial)
        assert self.other_tries() == self.others
        resets, rolled = (after - was for after, was in zip(self.counts(), before, strict=True))
        if done:
            assert (operation.status, resets, rolled) == ("done", 1, 0)
            event = events(self.station, self.serial, "pin-reset")[-1]
            assert event["detail"] == {"target": self.target, "identity_document": DOCUMENT,
                                       "card_serial": self.serial}
            assert verifies(self.card, self.target, new)
            assert not verifies(self.card, self.target, self.value)
            assert verifies(self.card, self.target, new)  # the counter full again
            self.value = new
            return "done"
        assert resets == 0
        if operation.status == "rolled-back":  # settled at once: nothing reached the card
            assert rolled == 0 and operation.failure is None
            assert not verifies(self.card, self.target, new)
            assert verifies(self.card, self.target, self.value)
            return "rolled-back"
        return self.recover(operation, new)

    def recover(self, operation, new: str) -> str:  # type: ignore[no-untyped-def]
        assert operation.status == "interrupted" and new not in (operation.failure or "")
        registry = self.station.registry
        settled = recover_operation(None, self.station.hsm, registry,
                                    self.station.home.settings(), operation.id, None, False)
        assert settled == {"operation": operation.id, "status": "rolled-back",
                           "note": ROLLED_BACK_NOTE}
        assert registry.operation(operation.id).status == "rolled-back"
        assert registry.open_operation_of(self.serial) is None
        event = events(self.station, self.serial, "operation-rolled-back")[-1]
        assert (event["reason"], event["detail"]) == (ROLLED_BACK_NOTE, {
            "operation": operation.id, "kind": "pin-reset", "target": self.target})
        if verifies(self.card, self.target, new):  # the card did reset it: reset again
            self.value = new
            return "reset-recovered"
        assert verifies(self.card, self.target, self.value)
        return "recovered"


@pytest.mark.parametrize("target", sorted(FRESH))
@pytest.mark.parametrize("mode", ["remove", "garble"])
def test_pin_reset_at_every_apdu_index(station, target: str, mode: str) -> None:  # type: ignore[no-untyped-def]
    resetting = Resetting(station, target)
    counter = FaultyTransport(InProcessTransport(resetting.card), fail_at=10**6)
    before, new = resetting.counts(), next(resetting.fresh)
    assert resetting.outcome(new, resetting.attempt(counter, new), before) == "done"
    total = counter.count
    assert 6 <= total <= 12, total
    seen = []
    for k in range(total):
        transport = FaultyTransport(InProcessTransport(resetting.card), fail_at=k, mode=mode)
        before, new = resetting.counts(), next(resetting.fresh)
        seen.append(resetting.outcome(new, resetting.attempt(transport, new), before))
    # RESET RETRY COUNTER is the last APDU: every fault before it is settled at once with
    # no note; at it, the card pulled (maybe reset: the host cannot tell) or its answer
    # garbled (reset) leaves the note
    assert seen[:-1] == ["rolled-back"] * (total - 1), seen
    assert seen[-1] == {"remove": "recovered", "garble": "reset-recovered"}[mode], seen


class ResetMoment:
    """A transport noting how many token sections had run when RESET RETRY COUNTER was
    handed to the card."""

    def __init__(self, inner, faults: InjectedFaults) -> None:  # type: ignore[no-untyped-def]
        self.inner, self.faults, self.at = inner, faults, None

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]:
        if apdu[1] == Ins.RESET_RETRY_COUNTER:
            self.at = self.faults.count
        return self.inner.send_and_receive(apdu)

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize("target", sorted(FRESH))
def test_pin_reset_with_every_hsm_call_failing(station, target: str) -> None:  # type: ignore[no-untyped-def]
    import pkcs11

    errors = [pkcs11.SessionHandleInvalid, pkcs11.DeviceRemoved, pkcs11.GeneralError]
    resetting = Resetting(station, target)
    before, new = resetting.counts(), next(resetting.fresh)
    with InjectedFaults(station.hsm, fail_at=10**6, error=Exception) as counting:
        moment = ResetMoment(InProcessTransport(resetting.card), counting)
        done = resetting.attempt(moment, new)
    assert resetting.outcome(new, done, before) == "done"
    total, boundary = counting.count, moment.at
    assert boundary is not None and 0 < boundary < total, (boundary, total)
    seen = []
    for k in range(total):
        before, new = resetting.counts(), next(resetting.fresh)
        with InjectedFaults(station.hsm, fail_at=k, error=errors[k % 3]):
            done = resetting.attempt(InProcessTransport(resetting.card), new)
        assert not done or k >= boundary, k
        if k >= boundary and not done:  # the journal says what is known: the card's 9000
            failure = last_operation(station, resetting.serial).failure or ""
            assert failure.startswith(CONFIRMED), (k, failure)
        # before the reset (the card's keys): nothing sent, rolled back at once; after its
        # 9000 a fault closing the session leaves it done, one recording it leaves the card
        # with the new PIN and the registry without: interrupted, then the note
        expected = "rolled-back" if k < boundary else "done" if done else "reset-recovered"
        seen.append(resetting.outcome(new, done, before))
        assert seen[-1] == expected, (k, seen)
    assert "reset-recovered" in seen and "rolled-back" in seen, seen


# ---- renewal ----------------------------------------------------------------------------

WINDOW = 5 * 366  # every JPKI certificate (at most 5 years) is due; the card (10) is not
JPKI_KEYS = {"jpki-auth": (JpkiKey.AUTH, "auth", PINS.jpki_auth),
             "jpki-sign": (JpkiKey.SIGN, "sign", PINS.jpki_sign)}


def certificates_on_card(station, card) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Each JPKI key signs a fresh challenge after its PIN, verified under the
    certificate in its EF, which the token's current CA issued (the CA file on the card
    is that CA's certificate). Returns kind -> serial number (hex)."""
    signers = JpkiSigners.current(station.hsm)
    jpki = JpkiApSession(channel(card))
    jpki.select()
    found = {}
    for kind, (key, which, pin) in JPKI_KEYS.items():
        jpki.verify_key_pin(key, pin.reveal())
        certificate, ca = jpki.read_certificate(which), jpki.read_certificate(f"{which}_ca")
        der = serialization.Encoding.DER
        assert ca.public_bytes(der) == signers.for_kind(kind).certificate.public_bytes(der)
        certificate.verify_directly_issued_by(ca)
        challenge = os.urandom(32)
        signature = jpki.sign_digest(key, hashes.SHA256(), hashlib.sha256(challenge).digest())
        certificate.public_key().verify(signature, challenge, padding.PKCS1v15(),
                                        hashes.SHA256())
        found[kind] = f"{certificate.serial_number:x}"
    return found


class Renewing:
    """One card renewed again and again; ``earlier`` = every JPKI certificate it has had."""

    def __init__(self, station) -> None:  # type: ignore[no-untyped-def]
        self.station = station
        self.card, _code = issued_card(station)
        self.serial = self.card.state.serial
        self.earlier: set[str] = set()
        self.current = self.agree()

    def attempt(self, transport) -> bool:  # type: ignore[no-untyped-def]
        registry = self.station.registry
        plan = plan_renewal(registry, self.serial, WINDOW)
        self.card.power_on()
        try:
            renew_certificates(ApduChannel(transport), self.station.hsm, registry, plan,
                               "http://crl.juki.invalid", this_process())
        except CAUGHT:
            return False
        return True

    def agree(self) -> dict[str, str]:
        """Card and registry agree: the card's certificates are the valid ones, every
        earlier one revoked ``renewed``; no open operation."""
        registry = self.station.registry
        assert registry.open_operation_of(self.serial) is None
        on_card = certificates_on_card(self.station, self.card)
        valid = sorted((c.kind, c.serial_number) for c in registry.certificates_of(
            card_serial=self.serial, status="valid") if c.kind in KINDS)
        assert valid == sorted(on_card.items())
        revoked = {c.serial_number: c.reason for c in registry.certificates_of(
            card_serial=self.serial) if c.kind in KINDS and c.status == "revoked"}
        # the card's earlier certificates renewed; one an interrupted run issued (its key
        # generated again since) superseded
        assert {s: r for s, r in revoked.items() if s in self.earlier} == dict.fromkeys(
            self.earlier, "renewed")
        assert set(revoked.values()) <= {"renewed", "superseded"}
        return on_card

    def recorded_if_on_card(self) -> None:
        """After an interrupted run: whatever certificate the card's EFs hold is one the
        registry knows (and can revoke), even before recover."""
        jpki = JpkiApSession(channel(self.card))
        jpki.select()
        jpki.verify_key_pin(JpkiKey.SIGN, PINS.jpki_sign.reveal())
        known = {c.serial_number for c in self.station.registry.certificates_of(
            card_serial=self.serial)}
        for which in ("auth", "sign"):
            try:
                certificate = jpki.read_certificate(which)
            except CardError:  # erased or half written: no certificate
                continue
            assert f"{certificate.serial_number:x}" in known, which

    def settle(self, done: bool) -> str:
        """After an attempt: done, or finished by recover; then card and registry agree."""
        operation = last_operation(self.station, self.serial)
        if not done:
            assert operation.status == "interrupted", operation
            self.recorded_if_on_card()
            recover_operation(channel(self.card), self.station.hsm, self.station.registry,
                              self.station.home.settings(), operation.id, None, False)
        assert self.station.registry.operation(operation.id).status == "done"
        self.earlier |= set(self.current.values())
        now = self.agree()
        assert not set(now.values()) & self.earlier
        self.current = now
        return "done" if done else "finished"


@pytest.mark.parametrize("mode", ["remove", "garble"])
def test_renewal_at_every_apdu_index(station, mode: str) -> None:  # type: ignore[no-untyped-def]
    renewing = Renewing(station)
    counter = FaultyTransport(InProcessTransport(renewing.card), fail_at=10**6)
    assert renewing.settle(renewing.attempt(counter)) == "done"
    total = counter.count
    assert total > 20, total
    for k in range(total):
        transport = FaultyTransport(InProcessTransport(renewing.card), fail_at=k, mode=mode)
        done = renewing.attempt(transport)
        if mode == "remove":
            assert done is not (transport.count > k), k  # a pulled card never finishes
        renewing.settle(done)


def test_renewal_with_every_hsm_call_failing(station) -> None:  # type: ignore[no-untyped-def]
    import pkcs11

    errors = [pkcs11.SessionHandleInvalid, pkcs11.DeviceRemoved, pkcs11.GeneralError]
    renewing = Renewing(station)
    with InjectedFaults(station.hsm, fail_at=10**6, error=Exception) as counting:
        assert renewing.attempt(InProcessTransport(renewing.card))
    renewing.settle(True)
    total = counting.count
    assert total > 5, total
    for k in range(total):
        with InjectedFaults(station.hsm, fail_at=k, error=errors[k % 3]):
            done = renewing.attempt(InProcessTransport(renewing.card))
        assert not done, k
        assert renewing.settle(done) == "finished"
