"""A small card OS: the command interpreter of a virtual card.

Security rules it enforces (and the tests check): PIN retry counters are decremented
and persisted *before* the comparison; a blocked PIN stays blocked; an empty VERIFY
answers the counter and spends nothing; a GET CHALLENGE value is single-use (the
next command, whatever it is, discards it); personalisation commands work only in
life-cycle OP_READY; security status is lost on reset and when another DF is selected.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from ..apdu import CommandApdu, join_response
from ..apps.issuer import encode_rsa_public_key_template
from ..constants import (
    P1P2_CHANGE_CODE,
    P2_SELECTED_KEY,
    SELECT_BY_DF_NAME,
    SELECT_EF_UNDER_DF,
    TAG_CARD_IMAGE_NUMBER,
    TAG_LIFE_CYCLE,
    Aid,
    Ins,
    LifeCycle,
    RegistryFile,
)
from ..digestinfo import prehashed_digest_info
from ..errors import CardDataError
from ..registry_records import (
    CodeChange,
    decode_change_request,
    decode_code,
    decode_history,
    encode_code,
    encode_history,
)
from ..scp03.wrapping import SM_CLA_BIT
from ..status import SW
from ..tlv import Tlv
from .secure import REQUIRED_FOR_PUT_KEY, CardSecureMessaging, load_keys
from .state import FREE, AppState, CardState, FileState, PinState

log = logging.getLogger(__name__)

MAX_CHALLENGE = 32
PROPRIETARY_CLASS_INS = (Ins.GET_DATA, Ins.SET_STATUS, Ins.PUT_KEY, Ins.COMPUTE_DIGITAL_SIGNATURE)


class CardStatus(Exception):
    """Raised inside a handler to answer with a status word."""

    def __init__(self, sw: int) -> None:
        super().__init__(f"{sw:04X}")
        self.sw = sw


@dataclass
class VolatileState:
    """RAM of the card: lost on power-off and reset."""

    selected_aid: str | None = None
    selected_fid: str | None = None
    verified: set[str] = field(default_factory=set)
    pending_response: bytes = b""
    challenge: bytes | None = None


class VirtualCard:
    """Answers raw C-APDUs with raw R-APDUs; ``persist`` is called after every change."""

    def __init__(self, state: CardState, persist: Callable[[CardState], None] | None = None):
        self.state = state
        self._persist = persist or (lambda _state: None)
        self.ram = VolatileState()
        self._loaded_keys: dict[str, rsa.RSAPrivateKey] = {}  # PEM -> parsed (parsing is slow)
        self._handlers: dict[int, Callable[[CommandApdu], bytes]] = {
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
        self.sm = CardSecureMessaging()
        self._protected = False  # the command being executed arrived under secure messaging

    @property
    def atr(self) -> bytes:
        return bytes.fromhex(self.state.atr)

    def power_on(self) -> None:
        self.ram = VolatileState()
        self.sm.reset()

    reset = power_on
    power_off = power_on

    # ---- dispatch -------------------------------------------------------------------

    def process_apdu(self, raw: bytes) -> bytes:
        try:
            apdu = CommandApdu.decode(raw)
        except CardDataError:
            return join_response(b"", SW.WRONG_LENGTH)
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
        if not apdu.cla & SM_CLA_BIT and not required:
            self._protected = False
            return self._respond(*self._execute(apdu), apdu.ne)
        plain = self.sm.unwrap(self.ram.selected_aid, apdu, required)
        if isinstance(plain, int):
            return join_response(b"", plain)
        self._protected = True
        data, sw = self._execute(plain) if plain is not None else (b"", SW.OK)
        if self.sm.channel is None:  # the command ended the session (selected another DF)
            return self._respond(data, sw, apdu.ne)
        # Ne limited the plain data; the protected answer grows by padding and R-MAC.
        return self._respond(*self.sm.wrap(data, sw), None)

    def _execute(self, apdu: CommandApdu) -> tuple[bytes, int]:
        handler = self._handlers.get(apdu.ins)
        if handler is None:
            return b"", SW.INS_NOT_SUPPORTED
        expected_cla = 0x80 if apdu.ins in PROPRIETARY_CLASS_INS else 0x00
        if apdu.cla != expected_cla:
            return b"", SW.CLA_NOT_SUPPORTED
        try:
            return handler(apdu), SW.OK
        except CardStatus as status:
            return b"", status.sw
        except OSError:  # the EEPROM (state file) could not be written: fail closed
            log.exception("card state write failed")
            return b"", SW.MEMORY_FAILURE
        except Exception:  # a card OS bug must look like a card error, not a removal
            log.exception("card OS error on INS %02X", apdu.ins)
            return b"", SW.UNKNOWN

    def _respond(self, data: bytes, sw: int, ne: int | None) -> bytes:
        """The R-APDU; data longer than Ne (256 for Le=00) goes out in 61xx parts."""
        limit = ne or 256
        if sw != SW.OK or len(data) <= limit:
            return join_response(data, sw)
        self.ram.pending_response = data[limit:]
        return join_response(data[:limit], SW.BYTES_AVAILABLE | (min(len(data) - limit, 256) & 0xFF))

    def _get_response(self, apdu: CommandApdu) -> bytes:
        pending = self.ram.pending_response
        if not pending or apdu.p1 or apdu.p2:
            self.ram.pending_response = b""
            return join_response(b"", SW.CONDITIONS_NOT_SATISFIED)
        self.ram.pending_response = b""
        return self._respond(pending, SW.OK, apdu.ne)

    # ---- helpers --------------------------------------------------------------------

    def _app(self) -> AppState:
        if self.ram.selected_aid is None:
            raise CardStatus(SW.CONDITIONS_NOT_SATISFIED)
        return self.state.apps[self.ram.selected_aid]

    def _require_personalisable(self) -> None:
        if self.state.life_cycle != LifeCycle.OP_READY:
            raise CardStatus(SW.CONDITIONS_NOT_SATISFIED)

    def _save(self) -> None:
        self._persist(self.state)

    def _selected_fid(self, table: Mapping[str, object], missing: int) -> str:
        """FID of the current EF if it is in ``table`` (files, PINs or keys), else ``missing``."""
        fid = self.ram.selected_fid
        if fid is None or fid not in table:
            raise CardStatus(missing)
        return fid

    def _selected_file(self) -> FileState:
        files = self._app().files
        return files[self._selected_fid(files, SW.COMMAND_NOT_ALLOWED)]

    def _selected_pin(self) -> tuple[str, PinState]:
        pins = self._app().pins
        fid = self._selected_fid(pins, SW.REFERENCED_DATA_NOT_FOUND)
        return fid, pins[fid]

    # ---- commands -------------------------------------------------------------------

    def _select(self, apdu: CommandApdu) -> bytes:
        if apdu.p1 == SELECT_BY_DF_NAME:
            aid = apdu.data.hex()
            if aid not in self.state.apps:
                raise CardStatus(SW.FILE_NOT_FOUND)
            if aid != self.ram.selected_aid:
                self.ram.verified.clear()
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
        if self.state.life_cycle != LifeCycle.OP_READY:
            if pin.tries_left == 0:
                raise CardStatus(SW.AUTH_METHOD_BLOCKED)
            if fid not in self.ram.verified:
                raise CardStatus(SW.SECURITY_STATUS_NOT_SATISFIED)
        if not pin.accepts_format(apdu.data):
            raise CardStatus(SW.WRONG_DATA)
        pin.set(apdu.data)
        self._save()
        return b""

    def _get_challenge(self, apdu: CommandApdu) -> bytes:
        if apdu.p1 or apdu.p2:
            raise CardStatus(SW.INCORRECT_P1P2)
        length = apdu.ne or 0
        if not 1 <= length <= MAX_CHALLENGE:
            raise CardStatus(SW.WRONG_LENGTH)
        challenge = secrets.token_bytes(length)
        self.ram.challenge = challenge
        return challenge

    def _private_key(self) -> rsa.RSAPrivateKey:
        keys = self._app().keys
        pem = keys[self._selected_fid(keys, SW.REFERENCED_DATA_NOT_FOUND)]
        if pem is None:
            raise CardStatus(SW.REFERENCED_DATA_NOT_FOUND)
        key = self._loaded_keys.get(pem)
        if key is None:
            loaded = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
            if not isinstance(loaded, rsa.RSAPrivateKey):
                raise CardStatus(SW.REFERENCED_DATA_NOT_FOUND)
            key = self._loaded_keys[pem] = loaded
        return key

    def _compute_digital_signature(self, apdu: CommandApdu) -> bytes:
        """JPKI: PKCS#1 v1.5 type-1 signature over a host-built DigestInfo, with the
        selected key, after that key's PIN."""
        if apdu.p1 != 0 or apdu.p2 != P2_SELECTED_KEY:
            raise CardStatus(SW.INCORRECT_P1P2)
        key = self._private_key()
        pin = self._app().key_pins.get(self.ram.selected_fid or "")
        if pin is not None and pin not in self.ram.verified:
            raise CardStatus(SW.SECURITY_STATUS_NOT_SATISFIED)
        prehashed = prehashed_digest_info(apdu.data)
        if prehashed is None:
            raise CardStatus(SW.WRONG_DATA)
        algorithm, digest = prehashed
        return key.sign(digest, padding.PKCS1v15(), Prehashed(algorithm))

    def _internal_authenticate(self, apdu: CommandApdu) -> bytes:
        if apdu.p1 != 0 or apdu.p2 != P2_SELECTED_KEY:
            raise CardStatus(SW.INCORRECT_P1P2)
        if not apdu.data:
            raise CardStatus(SW.WRONG_LENGTH)
        key = self._private_key()
        return key.sign(apdu.data, padding.PKCS1v15(), hashes.SHA256())

    def _generate_key_pair(self, apdu: CommandApdu) -> bytes:
        self._require_personalisable()
        if apdu.p1 != 0 or apdu.p2 != P2_SELECTED_KEY:
            raise CardStatus(SW.INCORRECT_P1P2)
        keys = self._app().keys
        fid = self._selected_fid(keys, SW.REFERENCED_DATA_NOT_FOUND)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        keys[fid] = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")
        self._save()
        return encode_rsa_public_key_template(key.public_key())

    def _require_isd(self) -> None:
        if self.ram.selected_aid != Aid.ISSUER_SECURITY_DOMAIN.hex():
            raise CardStatus(SW.CONDITIONS_NOT_SATISFIED)

    def _get_data(self, apdu: CommandApdu) -> bytes:
        self._require_isd()
        tag = (apdu.p1 << 8) | apdu.p2
        if tag == TAG_CARD_IMAGE_NUMBER:
            return Tlv(tag, self.state.serial.encode("ascii")).encode()
        if tag == TAG_LIFE_CYCLE:
            return Tlv(tag, bytes((self.state.life_cycle,))).encode()
        raise CardStatus(SW.REFERENCED_DATA_NOT_FOUND)

    def _put_key(self, apdu: CommandApdu) -> bytes:
        """Load an application's SCP03 keys, only through the issuer domain's channel."""
        self._require_isd()
        if not self._protected or self.sm.level & REQUIRED_FOR_PUT_KEY != REQUIRED_FOR_PUT_KEY:
            raise CardStatus(SW.SECURITY_STATUS_NOT_SATISFIED)
        if apdu.p1 != 0x00 or apdu.p2 != 0x81:
            raise CardStatus(SW.INCORRECT_P1P2)
        data, sw = load_keys(self._app(), apdu.data, self.state.apps)
        if sw != SW.OK:
            raise CardStatus(sw)
        self._save()
        return data

    def _put_data(self, apdu: CommandApdu) -> bytes:
        """Resident-registry AP: change the record code, keeping the old one in history."""
        if self.ram.selected_aid != Aid.RESIDENT_REGISTRY.hex() or not self._protected:
            raise CardStatus(SW.CONDITIONS_NOT_SATISFIED)
        if (apdu.p1 << 8 | apdu.p2) != P1P2_CHANGE_CODE:
            raise CardStatus(SW.INCORRECT_P1P2)
        files = self._app().files
        try:
            new_code, date, reason = decode_change_request(apdu.data)
            current = decode_code(files[f"{RegistryFile.RECORD_CODE:04X}"].content)
            history = decode_history(files[f"{RegistryFile.CHANGE_HISTORY:04X}"].content)
        except CardDataError:
            raise CardStatus(SW.WRONG_DATA) from None
        if new_code == current or any(c.previous_code == new_code for c in history):
            raise CardStatus(SW.WRONG_DATA)  # a retired code never comes back
        history.append(CodeChange(date, reason, current))
        files[f"{RegistryFile.CHANGE_HISTORY:04X}"].data = encode_history(history).hex()
        files[f"{RegistryFile.RECORD_CODE:04X}"].data = encode_code(new_code).hex()
        self._save()
        return b""

    def _set_status(self, apdu: CommandApdu) -> bytes:
        self._require_isd()
        if apdu.p1 != 0x80 or apdu.p2 != LifeCycle.SECURED:
            raise CardStatus(SW.INCORRECT_P1P2)
        self._require_personalisable()
        self.state.life_cycle = LifeCycle.SECURED
        self._save()
        return b""
