"""The resident card OS: the command interpreter of a virtual individual-number card.

Security rules it enforces (and the tests check): PIN retry counters are decremented
and persisted *before* the comparison; a blocked PIN stays blocked; an empty VERIFY
answers the counter and spends nothing (63C0 blocked, 6984 to every attempt after);
logical channels other than 0 answer 6881 before anything else; a GET CHALLENGE value is single-use (the
next command, whatever it is, discards it); personalisation commands work only in
life-cycle OP_READY; security status is lost on power-off and when another AP is selected,
not on a warm reset or when the same AP is selected again (real-card.md §2.1).
"""

from __future__ import annotations

from ..apdu import CommandApdu, join_response, split_response
from ..constants import (
    CLA_CHANNEL_MASK,
    CLA_SECURE_MESSAGING,
    CLA_TEXT_SM,
    CLA_TEXT_SM_AUTHENTICATED_HEADER,
    SELECT_BY_DF_NAME,
    SELECT_EF_UNDER_DF,
    Aid,
    Ins,
)
from ..status import SW
from ..tlv import Tlv
from . import counter_rules
from .card_core import CardStatus, Handler
from .file_commands import FileCommands
from .issuer_commands import IssuerCommands
from .key_commands import KeyCommands
from .pin_commands import PinCommands
from .state import CardState

try:  # the card-info AP's secure messaging (part S's module)
    from .text_sm import CardInfoSecureMessaging
except ImportError:  # pragma: no cover - until it lands
    CardInfoSecureMessaging = None  # type: ignore[assignment,misc]

PROPRIETARY_CLASS_INS = (Ins.SET_STATUS, Ins.PUT_KEY, Ins.COMPUTE_DIGITAL_SIGNATURE,
                         Ins.CHANGE_KEY, Ins.SET_SESSION_KEY, Ins.SET_PUBLIC_IC_KEY,
                         Ins.LAST_COMMAND)
EITHER_CLASS_INS = (Ins.GET_DATA, Ins.PUT_DATA)
# In an AP whose files need SCP03 (the 住基AP), these answer in the clear: the public parts.
CLEAR_IN_SM_AP = (Ins.SELECT, Ins.READ_RECORD, Ins.VERIFY, Ins.CHANGE_KEY, Ins.GET_CHALLENGE,
                  Ins.SET_SESSION_KEY, Ins.GET_DATA)
SELECT_MF = 0x00
MIN_AID_PREFIX = 5  # a RID
CARD_INFO = Aid.CARD_INFO.hex()


class ResidentCardOs(FileCommands, PinCommands, KeyCommands, IssuerCommands):
    """Answers raw C-APDUs with raw R-APDUs; ``persist`` is called after every change."""

    def __init__(self, state: CardState, persist=None) -> None:  # type: ignore[no-untyped-def]
        super().__init__(state, persist)
        self.text_sm = CardInfoSecureMessaging() if CardInfoSecureMessaging else None

    def power_on(self) -> None:
        super().power_on()
        self._end_text_session()

    power_off = power_on

    def reset(self) -> None:
        super().reset()
        self._end_text_session()

    def _end_text_session(self) -> None:
        if getattr(self, "text_sm", None) is not None:
            self.text_sm.reset()

    def _command_table(self) -> dict[int, Handler]:
        return {
            Ins.SELECT: self._select,
            Ins.READ_BINARY: self._read_binary,
            Ins.UPDATE_BINARY: self._update_binary,
            Ins.ERASE_BINARY: self._erase_binary,
            Ins.RESET_RETRY_COUNTER: self._reset_retry_counter,
            Ins.READ_RECORD: self._read_record,
            Ins.UPDATE_RECORD: self._update_record,
            Ins.VERIFY: self._verify,
            Ins.CHANGE_REFERENCE_DATA: self._change_reference_data,
            Ins.CHANGE_KEY: self._change_key,
            Ins.GET_CHALLENGE: self._get_challenge,
            Ins.INTERNAL_AUTHENTICATE: self._internal_authenticate,
            Ins.GENERATE_KEY_PAIR: self._generate_key_pair,
            Ins.GET_DATA: self._get_data,
            Ins.SET_STATUS: self._set_status,
            Ins.PUT_KEY: self._put_key,
            Ins.PUT_DATA: self._put_data,
            Ins.COMPUTE_DIGITAL_SIGNATURE: self._compute_digital_signature,
            Ins.SET_SESSION_KEY: self._set_session_key,
            Ins.SET_PUBLIC_IC_KEY: self._refuse(SW.INCORRECT_P1P2),
            Ins.LAST_COMMAND: self._refuse(SW.WRONG_LENGTH),
        }

    @staticmethod
    def _refuse(sw: int) -> Handler:
        def handler(_apdu: CommandApdu) -> bytes:
            raise CardStatus(sw)
        return handler

    # ---- dispatch -------------------------------------------------------------------

    def _process(self, apdu: CommandApdu) -> bytes:
        self.ram.challenge = None  # single-use: whatever comes next discards it
        if apdu.cla & CLA_CHANNEL_MASK:
            return join_response(b"", SW.LOGICAL_CHANNEL_NOT_SUPPORTED)
        if apdu.ins == Ins.GET_RESPONSE:
            return self._get_response(apdu)
        self.ram.pending_response = b""
        if not apdu.cla & 0x80 and apdu.cla & CLA_TEXT_SM:
            return self._text_secure_messaging(apdu)
        app = self.state.apps.get(self.ram.selected_aid or "")
        if apdu.ins == Ins.INITIALIZE_UPDATE and apdu.cla == 0x80:
            diversification = bytes.fromhex(self.state.serial + "F") + bytes(2)
            data, sw = self.sm.initialize_update(self.ram.selected_aid, app, apdu, diversification)
            return self._respond(data, sw, apdu.ne)
        if apdu.ins == Ins.EXTERNAL_AUTHENTICATE and apdu.cla == 0x84:
            return join_response(b"", self.sm.external_authenticate(self.ram.selected_aid, apdu))
        self.sm.note_other_command()
        required = app.sm_level if app and apdu.ins not in CLEAR_IN_SM_AP else 0
        if not apdu.cla & CLA_SECURE_MESSAGING and not required:
            self._protected = False
            return self._respond(*self._execute(apdu), apdu.ne)
        bound = self.sm.bound_aid if self._spanning_session() else self.ram.selected_aid
        plain = self.sm.unwrap(bound, apdu, required)
        if isinstance(plain, int):
            return join_response(b"", plain)
        self._protected = True
        session = self.sm.session  # the answer is protected even if the command ends it
        if plain is None:
            data, sw = b"", SW.OK
        elif self._counter_session() and not counter_rules.admits(
                plain, self.ram.selected_aid, self.ram.selected_fid):
            data, sw = b"", SW.CONDITIONS_NOT_SATISFIED  # not in the counter set
        else:
            data, sw = self._execute(plain)
        # Ne limited the plain data; the protected answer grows by padding and R-MAC.
        return self._respond(*split_response(session.wrap_response(data, sw)), None)

    def _text_secure_messaging(self, apdu: CommandApdu) -> bytes:
        """CLA 08/0C: the card-info AP's session (real-card.md §4.7). 0C there: 6987;
        with no session: SELECT 6882, anything else 69FC."""
        in_card_info = self.ram.selected_aid == CARD_INFO
        if in_card_info and apdu.cla & 0x0C == CLA_TEXT_SM_AUTHENTICATED_HEADER:
            return join_response(b"", SW.SM_DATA_OBJECT_MISSING)
        text_sm = self.text_sm
        if not in_card_info or text_sm is None:  # in the AP, unwrap answers 6882/69FC
            refusal = SW.SECURE_MESSAGING_NOT_SUPPORTED if apdu.ins == Ins.SELECT \
                else SW.SM_SESSION_ABSENT
            return join_response(b"", refusal)
        plain = text_sm.unwrap(apdu)
        if isinstance(plain, int):
            return join_response(b"", plain)
        self._protected = False
        data, sw = self._execute(plain)
        if self.ram.selected_aid != CARD_INFO or not text_sm.active:
            return join_response(b"", sw)  # the command itself ended the session
        return text_sm.wrap(data, sw)

    def _execute(self, apdu: CommandApdu) -> tuple[bytes, int]:
        if apdu.ins not in self._handlers:
            return b"", SW.INS_NOT_SUPPORTED
        if apdu.ins in EITHER_CLASS_INS:
            expected = (0x00, 0x80)
        else:
            expected = (0x80,) if apdu.ins in PROPRIETARY_CLASS_INS else (0x00,)
        if apdu.cla not in expected:
            return b"", SW.CLA_NOT_SUPPORTED
        return self._run(apdu)

    # ---- SELECT ---------------------------------------------------------------------

    def _select(self, apdu: CommandApdu) -> bytes:
        """By DF name (full AID); an EF (or key reference) of the current DF by FID;
        ``00 A4 00 00`` (MF) is 6A86 at power-on and a no-op once an AP is selected;
        3F00 is not a FID of this card (6A82); the ISD restores the power-on state."""
        if apdu.p1 == SELECT_BY_DF_NAME:
            return self._select_application(apdu)
        if apdu.p1 == SELECT_EF_UNDER_DF or (apdu.p1 == SELECT_MF and apdu.data):
            if len(apdu.data) != 2:
                raise CardStatus(SW.WRONG_LENGTH)
            app = self._app()
            fid = apdu.data.hex().upper()
            if fid not in app.files and fid not in app.pins and fid not in app.keys:
                raise CardStatus(SW.FILE_NOT_FOUND)
            self.ram.selected_fid = fid
            return b""
        if apdu.p1 == SELECT_MF and apdu.p2 == 0 and not apdu.data:
            if self._at_mf_level():
                raise CardStatus(SW.INCORRECT_P1P2)
            return b""
        raise CardStatus(SW.INCORRECT_P1P2)

    def _select_application(self, apdu: CommandApdu) -> bytes:
        aid = apdu.data.hex()
        if aid not in self.state.apps:  # a prefix of one DF name also selects (JICSAP 4.2)
            matches = [name for name in self.state.apps
                       if len(apdu.data) >= MIN_AID_PREFIX and name.startswith(aid)]
            if len(matches) != 1:
                raise CardStatus(SW.FILE_NOT_FOUND)
            aid = matches[0]
        if aid != self.ram.status_aid:  # leaving an AP drops its security status
            self.ram.verified.clear()
            self.ram.status_aid = aid
        if aid != self.ram.selected_aid and not self._spanning_session():
            self.sm.reset()  # a secure channel belongs to the application it opened on
        self._end_text_session()  # any AP SELECT ends the card-info AP's session
        self.ram.selected_aid, self.ram.selected_fid = aid, None
        if aid == Aid.ISSUER_SECURITY_DOMAIN.hex():
            self.ram.verified.clear()  # the power-on (MF) state
        if apdu.p2 & 0x0C == 0x0C:
            return b""
        return Tlv.build(0x6F, Tlv(0x84, apdu.data)).encode()
