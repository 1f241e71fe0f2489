"""PIN commands of the resident card OS: VERIFY (current EF or SFI form), CHANGE
REFERENCE DATA (JPKI, card-info and surface keys), CHANGE KEY (共通AP/住基AP 001C) and
RESET RETRY COUNTER (the counter session's PIN reset).

The real card's answers (real-card.md §2.1, §10): an empty VERIFY is a retry query that
spends nothing (63Cx; 63C0 when blocked; 63Cx also when already verified, which OpenSC's
jpki driver needs after its login, RC §7.2 [C]); the
attempt that exhausts the counter answers 63C0 and every attempt after it 6984 (never 6983).
The retry counter is decremented and persisted before the comparison."""

from __future__ import annotations

import hmac

from ..apdu import CommandApdu
from ..constants import P1_RESET_WITH_NEW_VALUE, Aid, CardInfoFile, LifeCycle, SurfaceFile
from ..status import SW, CardStatus
from .card_core import CardCore
from .counter_rules import PINS as RESETTABLE_PINS
from .state import PinState

MAX_SECRET = 16  # JICSAP 6.4.9: VERIFY data 1-16 bytes
CHANGE_KEY_APPS = (Aid.COMMON.hex(), Aid.RESIDENT_REGISTRY.hex())
BLOCKED_FOR_GOOD = {(Aid.CARD_INFO.hex(), f"{CardInfoFile.BLOCKED_KEY:04X}")}
# Keys whose value is the card's printed data (照合番号A = the individual number, B = birth
# date + expiry year + security code, the surface birth-date key): set at issuance, never
# changed after it (ours; RC is silent), so a holder of one cannot re-key it and cut the
# card from its face.
DERIVED_KEYS = {(Aid.CARD_INFO.hex(), f"{fid:04X}")
                for fid in (CardInfoFile.COLLATION_A, CardInfoFile.COLLATION_B)} | {
    (Aid.CARD_SURFACE.hex(), f"{fid:04X}")
    for fid in (SurfaceFile.BIRTH_DATE_KEY, SurfaceFile.COLLATION_B, SurfaceFile.COLLATION_A)}


class PinCommands(CardCore):
    def _pin(self, p2: int) -> tuple[str, PinState]:
        pins = self._app().pins
        fid = self._referenced_fid(p2, pins, SW.REFERENCED_DATA_NOT_FOUND)
        return fid, pins[fid]

    def _verify(self, apdu: CommandApdu) -> bytes:
        if apdu.p1 != 0:
            raise CardStatus(SW.INCORRECT_P1P2)
        fid, pin = self._pin(apdu.p2)
        if not pin.is_set():
            raise CardStatus(SW.REFERENCE_DATA_NOT_USABLE)
        if not apdu.data:  # retry query: spends no try, also when already verified
            raise CardStatus(SW.VERIFY_FAILED | min(pin.tries_left, 0x0F))
        if pin.tries_left == 0:
            raise CardStatus(SW.REFERENCE_DATA_NOT_USABLE)
        if len(apdu.data) > MAX_SECRET:
            raise CardStatus(SW.WRONG_LENGTH)
        self.ram.verified.discard(fid)
        pin.tries_left -= 1
        self._save()  # the decrement is durable before the comparison is made
        if hmac.compare_digest(pin.hash(apdu.data), pin.digest or ""):
            pin.tries_left = pin.max_tries
            self._save()
            self.ram.verified.add(fid)
            return b""
        raise CardStatus(SW.VERIFY_FAILED | min(pin.tries_left, 0x0F))

    def _new_value(self, fid: str, pin: PinState, data: bytes) -> None:
        """The shared rules of CHANGE REFERENCE DATA and CHANGE KEY: the first value only
        in personalisation (SCP03 level 33), a later one only after VERIFY."""
        if (self.ram.selected_aid, fid) in BLOCKED_FOR_GOOD:
            raise CardStatus(SW.REFERENCE_DATA_NOT_USABLE)
        if self.state.life_cycle == LifeCycle.OP_READY:
            self._require_personalisable()
        elif (self.ram.selected_aid, fid) in DERIVED_KEYS:
            raise CardStatus(SW.CONDITIONS_NOT_SATISFIED)
        else:
            if pin.tries_left == 0:
                raise CardStatus(SW.REFERENCE_DATA_NOT_USABLE)
            if fid not in self.ram.verified:
                raise CardStatus(SW.SECURITY_STATUS_NOT_SATISFIED)
        if not pin.accepts_format(data):
            raise CardStatus(SW.WRONG_DATA)
        kept = (pin.salt, pin.digest, pin.tries_left)
        pin.set(data)
        try:
            self._save()
        except OSError:  # not durable: the old value stays in force (answered 6581)
            pin.salt, pin.digest, pin.tries_left = kept
            raise

    def _change_reference_data(self, apdu: CommandApdu) -> bytes:
        """``00 24 01 80 Lc <new>``; on the 共通AP/住基AP PINs only in personalisation
        (after issuance they change with CHANGE KEY)."""
        if apdu.p1 != 0x01:
            raise CardStatus(SW.INCORRECT_P1P2)
        fid, pin = self._pin(apdu.p2)
        if (self.ram.selected_aid in CHANGE_KEY_APPS
                and self.state.life_cycle != LifeCycle.OP_READY):
            raise CardStatus(SW.CONDITIONS_NOT_SATISFIED)
        self._new_value(fid, pin, apdu.data)
        return b""

    def _change_key(self, apdu: CommandApdu) -> bytes:
        """JICSAP CHANGE KEY ``80 32 00 80 Lc <new>`` after VERIFY: 共通AP and 住基AP PIN."""
        if apdu.p1 != 0:
            raise CardStatus(SW.INCORRECT_P1P2)
        if self.ram.selected_aid not in CHANGE_KEY_APPS:
            raise CardStatus(SW.CONDITIONS_NOT_SATISFIED)
        fid, pin = self._pin(apdu.p2)
        self._new_value(fid, pin, apdu.data)
        return b""

    def _reset_retry_counter(self, apdu: CommandApdu) -> bytes:
        """``00 2C 02 P2 Lc <new>`` (ISO 7816-4: new reference data, no reset code), P2
        ``80`` the current PIN EF or ``80|fid``: the PIN gets the new value and its full
        counter, its verified state is cleared; no other PIN changes. Only the five PINs
        of ``counter_rules.PINS`` (others 6985: 0012 stays blocked, 照合番号A/B and the
        surface keys are the printed data), in personalisation or the counter session."""
        self._require_writable()
        if apdu.p1 != P1_RESET_WITH_NEW_VALUE:
            raise CardStatus(SW.INCORRECT_P1P2)
        fid, pin = self._pin(apdu.p2)
        if (self.ram.selected_aid, fid) not in RESETTABLE_PINS:
            raise CardStatus(SW.CONDITIONS_NOT_SATISFIED)
        if not pin.accepts_format(apdu.data):
            raise CardStatus(SW.WRONG_DATA)
        kept = (pin.salt, pin.digest, pin.tries_left)
        pin.set(apdu.data)

        def restore() -> None:
            pin.salt, pin.digest, pin.tries_left = kept

        self._save_or_restore(restore)
        if self.ram.status_aid == self.ram.selected_aid:
            self.ram.verified.discard(fid)
        return b""
