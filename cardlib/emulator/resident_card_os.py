"""The resident card OS: the command interpreter of a virtual individual-number card.

Security rules it enforces (and the tests check): PIN retry counters are decremented
and persisted *before* the comparison; a blocked PIN stays blocked; an empty VERIFY
answers the counter and spends nothing; a GET CHALLENGE value is single-use (the
next command, whatever it is, discards it); personalisation commands work only in
life-cycle OP_READY; security status is lost on power-off and when another AP is selected,
not on a warm reset or when the same AP is selected again (real-card.md §2.1).
"""

from __future__ import annotations

import hmac

from ..apdu import CommandApdu, join_response, split_response
from ..constants import (
    CLA_SECURE_MESSAGING,
    P2_SELECTED_KEY,
    SELECT_BY_DF_NAME,
    SELECT_EF_UNDER_DF,
    Ins,
    LifeCycle,
)
from ..status import SW
from ..tlv import Tlv
from .card_core import CardStatus, Handler
from .issuer_commands import IssuerCommands
from .key_commands import KeyCommands
from .state import FREE

PROPRIETARY_CLASS_INS = (Ins.GET_DATA, Ins.SET_STATUS, Ins.PUT_KEY, Ins.COMPUTE_DIGITAL_SIGNATURE)


class ResidentCardOs(KeyCommands, IssuerCommands):
    """Answers raw C-APDUs with raw R-APDUs; ``persist`` is called after every change."""

    def _command_table(self) -> dict[int, Handler]:
        return {
            Ins.SELECT: self._select,
            Ins.READ_BINARY: self._read_binary,
            Ins.UPDATE_BINARY: self._update_binary,
            Ins.VERIFY: self._verify,
            Ins.CHANGE_REFERENCE_DATA: self._change_reference_data,
            Ins.GET_CHALLENGE: self._get_challenge,
            Ins.INTERNAL_AUTHENTICATE: self._internal_authenticate,
            Ins.GENERATE_KEY_PAIR: self._generate_key_pair,
            Ins.GET_DATA: self._get_data,
            Ins.SET_STATUS: self._set_status,
            Ins.PUT_KEY: self._put_key,
            Ins.PUT_DATA: self._put_data,
            Ins.COMPUTE_DIGITAL_SIGNATURE: self._compute_digital_signature,
        }

    # ---- dispatch -------------------------------------------------------------------

    def _process(self, apdu: CommandApdu) -> bytes:
        self.ram.challenge = None  # single-use: whatever comes next discards it
        if apdu.ins == Ins.GET_RESPONSE:
            return self._get_response(apdu)
        self.ram.pending_response = b""
        app = self.state.apps.get(self.ram.selected_aid or "")
        if apdu.ins == Ins.INITIALIZE_UPDATE and apdu.cla == 0x80:
            diversification = bytes.fromhex(self.state.serial + "F") + bytes(2)
            data, sw = self.sm.initialize_update(self.ram.selected_aid, app, apdu, diversification)
            return self._respond(data, sw, apdu.ne)
        if apdu.ins == Ins.EXTERNAL_AUTHENTICATE and apdu.cla == 0x84:
            return join_response(b"", self.sm.external_authenticate(self.ram.selected_aid, apdu))
        self.sm.note_other_command()
        required = app.sm_level if app and apdu.ins != Ins.SELECT else 0
        if not apdu.cla & CLA_SECURE_MESSAGING and not required:
            self._protected = False
            return self._respond(*self._execute(apdu), apdu.ne)
        bound = self.sm.bound_aid if self._personalisation_session() else self.ram.selected_aid
        plain = self.sm.unwrap(bound, apdu, required)
        if isinstance(plain, int):
            return join_response(b"", plain)
        self._protected = True
        session = self.sm.session  # the answer is protected even if the command ends it
        data, sw = self._execute(plain) if plain is not None else (b"", SW.OK)
        # Ne limited the plain data; the protected answer grows by padding and R-MAC.
        return self._respond(*split_response(session.wrap_response(data, sw)), None)

    def _execute(self, apdu: CommandApdu) -> tuple[bytes, int]:
        if apdu.ins not in self._handlers:
            return b"", SW.INS_NOT_SUPPORTED
        expected_cla = 0x80 if apdu.ins in PROPRIETARY_CLASS_INS else 0x00
        if apdu.cla != expected_cla:
            return b"", SW.CLA_NOT_SUPPORTED
        return self._run(apdu)

    # ---- commands -------------------------------------------------------------------

    def _select(self, apdu: CommandApdu) -> bytes:
        if apdu.p1 == SELECT_BY_DF_NAME:
            aid = apdu.data.hex()
            if aid not in self.state.apps:
                raise CardStatus(SW.FILE_NOT_FOUND)
            if aid != self.ram.status_aid:  # leaving an AP drops its security status
                self.ram.verified.clear()
                self.ram.status_aid = aid
            if aid != self.ram.selected_aid and not self._personalisation_session():
                self.sm.reset()  # a secure channel belongs to the application it opened on
            self.ram.selected_aid, self.ram.selected_fid = aid, None
            if apdu.p2 & 0x0C == 0x0C:
                return b""
            return Tlv.build(0x6F, Tlv(0x84, apdu.data)).encode()
        if apdu.p1 == SELECT_EF_UNDER_DF:
            if len(apdu.data) != 2:
                raise CardStatus(SW.WRONG_LENGTH)
            app = self._app()
            fid = apdu.data.hex().upper()
            if fid not in app.files and fid not in app.pins and fid not in app.keys:
                raise CardStatus(SW.FILE_NOT_FOUND)
            self.ram.selected_fid = fid
            return b""
        raise CardStatus(SW.INCORRECT_P1P2)

    def _read_binary(self, apdu: CommandApdu) -> bytes:
        if apdu.p1 & 0x80:
            raise CardStatus(SW.FUNCTION_NOT_SUPPORTED)  # short-FID read not offered
        entry = self._selected_file()
        if entry.read != FREE and entry.read.removeprefix("pin:") not in self.ram.verified:
            raise CardStatus(SW.SECURITY_STATUS_NOT_SATISFIED)
        content = entry.content
        offset = (apdu.p1 << 8) | apdu.p2
        if offset >= len(content):
            raise CardStatus(SW.WRONG_P1P2)
        return content[offset : offset + (apdu.ne or 256)]

    def _update_binary(self, apdu: CommandApdu) -> bytes:
        self._require_personalisable()
        entry = self._selected_file()
        offset = (apdu.p1 << 8) | apdu.p2
        content = entry.content
        if apdu.p1 & 0x80 or offset > len(content):
            raise CardStatus(SW.WRONG_P1P2)
        entry.data = (content[:offset] + apdu.data + content[offset + len(apdu.data):]).hex()
        self._save()
        return b""

    def _verify(self, apdu: CommandApdu) -> bytes:
        if apdu.p1 != 0 or apdu.p2 != P2_SELECTED_KEY:
            raise CardStatus(SW.INCORRECT_P1P2)
        fid, pin = self._selected_pin()
        if not pin.is_set():
            raise CardStatus(SW.REFERENCE_DATA_NOT_USABLE)
        if pin.tries_left == 0:
            raise CardStatus(SW.AUTH_METHOD_BLOCKED)
        if not apdu.data:  # status query: spends no try
            if fid in self.ram.verified:
                return b""
            raise CardStatus(SW.VERIFY_FAILED | pin.tries_left)
        self.ram.verified.discard(fid)
        pin.tries_left -= 1
        self._save()  # the decrement is durable before the comparison is made
        if hmac.compare_digest(pin.hash(apdu.data), pin.digest or ""):
            pin.tries_left = pin.max_tries
            self._save()
            self.ram.verified.add(fid)
            return b""
        raise CardStatus(SW.VERIFY_FAILED | pin.tries_left)

    def _change_reference_data(self, apdu: CommandApdu) -> bytes:
        if apdu.p1 != 0x01 or apdu.p2 != P2_SELECTED_KEY:
            raise CardStatus(SW.INCORRECT_P1P2)
        fid, pin = self._selected_pin()
        if self.state.life_cycle == LifeCycle.OP_READY:
            self._require_personalisable()  # the first PIN value comes under SCP03
        else:
            if pin.tries_left == 0:
                raise CardStatus(SW.AUTH_METHOD_BLOCKED)
            if fid not in self.ram.verified:
                raise CardStatus(SW.SECURITY_STATUS_NOT_SATISFIED)
        if not pin.accepts_format(apdu.data):
            raise CardStatus(SW.WRONG_DATA)
        pin.set(apdu.data)
        self._save()
        return b""
