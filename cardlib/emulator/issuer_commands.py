"""Issuer-domain and resident-registry commands of the virtual card: GET DATA, SET
STATUS (lock), PUT KEY and PUT DATA (record-code change)."""

from __future__ import annotations

from ..apdu import SHORT_MAX_NE, CommandApdu
from ..constants import (
    P1P2_CHANGE_CODE,
    SM_LEVEL_FULL,
    TAG_CARD_IMAGE_NUMBER,
    TAG_LIFE_CYCLE,
    Aid,
    LifeCycle,
    MfDataObject,
    RegistryFile,
)
from ..errors import CardDataError
from ..registry_records import (
    CodeChange,
    decode_change_request,
    decode_code,
    decode_history,
    encode_code,
    encode_history,
)
from ..status import SW
from ..tlv import Tlv
from .card_core import CardCore, CardStatus
from .profiles import blank_resident_card
from .secure import REQUIRED_FOR_PUT_KEY, load_keys


class IssuerCommands(CardCore):
    def _require_isd(self) -> None:
        if self.ram.selected_aid != Aid.ISSUER_SECURITY_DOMAIN.hex():
            raise CardStatus(SW.CONDITIONS_NOT_SATISFIED)

    def _get_data(self, apdu: CommandApdu) -> bytes:
        """MF-level GET DATA (no AP selected, or the ISD): the data objects of real-card.md
        §3 as personalised (absent: 6A88); 5F51 (the ATR) also inside an AP. Ours: 0045 is
        the bare ASCII serial until personalisation puts the card's own value, 9F70 the
        life cycle. An object longer than 256 bytes needs an extended Le (short Le: 6700)."""
        tag = (apdu.p1 << 8) | apdu.p2
        if tag == MfDataObject.CONTACT_ATR:
            value = self.atr[1:]
        elif not self._at_mf_level():
            raise CardStatus(SW.REFERENCED_DATA_NOT_FOUND)
        elif f"{tag:04X}" in self.state.data_objects:
            value = bytes.fromhex(self.state.data_objects[f"{tag:04X}"])
        elif tag == TAG_CARD_IMAGE_NUMBER:  # the card identification number, ASCII (RC §3)
            value = self.state.serial.encode("ascii")
        elif tag == TAG_LIFE_CYCLE:
            value = Tlv(tag, bytes((self.state.life_cycle,))).encode()
        else:
            raise CardStatus(SW.REFERENCED_DATA_NOT_FOUND)
        if len(value) > SHORT_MAX_NE and not apdu.extended:
            raise CardStatus(SW.WRONG_LENGTH)
        return value

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
        """With the ISD selected (personalisation): set MF data object P1P2 to exactly what
        GET DATA will return. In the resident-registry AP (under its own SCP03): change
        the record code, keeping the old one in history."""
        if self.ram.selected_aid == Aid.ISSUER_SECURITY_DOMAIN.hex():
            self._require_personalisable()
            tag = (apdu.p1 << 8) | apdu.p2
            if tag not in set(MfDataObject) or tag == MfDataObject.CONTACT_ATR:
                raise CardStatus(SW.INCORRECT_P1P2)
            if not apdu.data:
                raise CardStatus(SW.WRONG_LENGTH)
            self.state.data_objects[f"{tag:04X}"] = apdu.data.hex()
            self._save()
            return b""
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
        """``80 F0 80 0F``: lock (OP_READY → SECURED). ``80 F0 80 01`` (ours): wipe back to
        a blank card. Both only in the issuer domain's SCP03 session at level 33."""
        self._require_isd()
        if apdu.p1 != 0x80 or apdu.p2 not in (LifeCycle.SECURED, LifeCycle.OP_READY):
            raise CardStatus(SW.INCORRECT_P1P2)
        if not self._protected or self.sm.level != SM_LEVEL_FULL:
            raise CardStatus(SW.SECURITY_STATUS_NOT_SATISFIED)
        if apdu.p2 == LifeCycle.OP_READY:
            self._wipe()
            return b""
        self._require_personalisable()
        self.state.life_cycle = LifeCycle.SECURED
        self._save()
        return b""

    def _wipe(self) -> None:
        """Every application back to its empty, key-less, PIN-less structure; the serial
        and the issuer transport keys stay (they are the card maker's)."""
        isd = Aid.ISSUER_SECURITY_DOMAIN.hex()
        blank = blank_resident_card(self.state.serial)
        for aid, app in blank.apps.items():
            if aid != isd:
                self.state.apps[aid] = app
        self.state.data_objects.clear()
        self.state.life_cycle = LifeCycle.OP_READY
        self._loaded_keys.clear()
        self._save()
