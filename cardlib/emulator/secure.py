"""Secure messaging for the virtual card: one SCP03 channel at a time, bound to the
application it was opened on (selecting another application ends it), and the
PUT KEY command that loads an application's SCP03 keys through the issuer domain."""

from __future__ import annotations

import hmac

from ..apdu import CommandApdu
from ..constants import CLA_CHAINING, KCV_INPUT, KEY_TYPE_AES, TAG_AID
from ..scp03.card import CardSecureChannel
from ..scp03.crypto import aes_cbc_decrypt, aes_ecb_block
from ..scp03.keys import StaticKeyPrfs
from ..scp03.wrapping import SecureSession, SecurityLevel
from ..status import SW, CardStatus
from ..tlv import parse_one
from .state import AppState, ScpKeys


class CardSecureMessaging:
    def __init__(self) -> None:
        self.channel: CardSecureChannel | None = None
        self.bound_aid: str | None = None
        self._chained = b""

    def reset(self) -> None:
        self.channel = None
        self.bound_aid = None
        self._chained = b""

    @property
    def session(self) -> SecureSession:
        assert self.channel is not None and self.channel.session is not None
        return self.channel.session

    @property
    def level(self) -> int:
        session = self.channel.session if self.channel else None
        return int(session.level) if session and session.open else 0

    def initialize_update(self, aid: str | None, app: AppState | None,
                          apdu: CommandApdu, diversification: bytes) -> tuple[bytes, int]:
        self.reset()
        if aid is None or app is None or app.scp is None:
            return b"", SW.REFERENCED_DATA_NOT_FOUND
        keys = app.scp
        static = StaticKeyPrfs.from_software_keys(bytes.fromhex(keys.enc), bytes.fromhex(keys.mac))
        channel = CardSecureChannel(static, keys.kvn, diversification)
        try:
            data = channel.initialize_update(apdu)
        except CardStatus as refusal:
            return b"", refusal.sw
        self.channel, self.bound_aid = channel, aid
        return data, SW.OK

    def external_authenticate(self, aid: str | None, apdu: CommandApdu) -> int:
        if self.channel is None or aid != self.bound_aid:
            return SW.SECURITY_STATUS_NOT_SATISFIED
        return SW.OK if self.channel.external_authenticate(apdu) else SW.SECURITY_STATUS_NOT_SATISFIED

    def note_other_command(self) -> None:
        if self.channel:
            self.channel.note_other_command()

    def unwrap(self, aid: str | None, apdu: CommandApdu, required: int) -> CommandApdu | int | None:
        """The plain command; None for a stored chain link; or the SW to refuse with."""
        session = self.channel.session if self.channel else None
        if session is None or aid != self.bound_aid or not session.open:
            return SW.SECURITY_STATUS_NOT_SATISFIED
        if required and (int(session.level) & required) != required:
            return SW.SECURITY_STATUS_NOT_SATISFIED
        plain = session.unwrap_command(apdu)
        if plain is None:
            self._chained = b""
            return SW.SECURITY_STATUS_NOT_SATISFIED
        if plain.cla & CLA_CHAINING:
            self._chained += plain.data
            return None
        data, self._chained = self._chained + plain.data, b""
        return CommandApdu(plain.cla, plain.ins, plain.p1, plain.p2, data, plain.ne)



def load_keys(isd: AppState, data: bytes, apps: dict[str, AppState]) -> tuple[bytes, int]:
    """PUT KEY (ours + GP): ``4F <target AID>`` ‖ KVN ‖ 3 × (88 11 10 <key under the
    ISD's DEK, AES-CBC zero IV> 03 <KCV>). Keys are checked against their KCVs before
    anything is stored. Answers KVN ‖ 3 KCVs."""
    if isd.scp is None:
        return b"", SW.CONDITIONS_NOT_SATISFIED
    try:
        target, end = parse_one(data)
    except Exception:
        return b"", SW.WRONG_DATA
    if target.tag != TAG_AID or target.value.hex() not in apps:
        return b"", SW.REFERENCED_DATA_NOT_FOUND
    body = data[end:]
    if len(body) != 1 + 3 * 23:
        return b"", SW.WRONG_LENGTH
    kvn, dek = body[0], bytes.fromhex(isd.scp.dek)
    keys, kcvs = [], b""
    for offset in range(1, len(body), 23):
        component = body[offset:offset + 23]
        if component[:3] != bytes((KEY_TYPE_AES, 0x11, 0x10)) or component[19] != 0x03:
            return b"", SW.WRONG_DATA
        key = aes_cbc_decrypt(dek, bytes(16), component[3:19])
        kcv = aes_ecb_block(key, KCV_INPUT)[:3]
        if not hmac.compare_digest(kcv, component[20:23]):
            return b"", SW.WRONG_DATA
        keys.append(key.hex())
        kcvs += kcv
    apps[target.value.hex()].scp = ScpKeys(kvn, *keys)
    return bytes((kvn,)) + kcvs, SW.OK


REQUIRED_FOR_PUT_KEY = int(SecurityLevel.C_MAC | SecurityLevel.C_DEC)
