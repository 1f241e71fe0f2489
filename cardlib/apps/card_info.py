"""Card-info input support AP (券面事項入力補助AP, real-card.md §4): the credentials it
takes (PIN 0011, 照合番号A 0014, 照合番号B 0015), which files each opens, its files read
physically (filler included: DF31 covers it), and its secure messaging (§4.7)."""

from __future__ import annotations

from enum import IntEnum

from cryptography.hazmat.primitives.asymmetric import rsa

from ..apdu import CommandApdu
from ..card_info_records import decode_session_key_file
from ..channel import ApduChannel
from ..constants import Aid, CardInfoFile, Ins
from ..records import FourInfo, decode_four_info, decode_individual_number
from ..text_sm import open_text_sm
from .base import ApplicationSession, PinStatus, pin_status_of

P2_KEY_BY_SFI = 0x80  # VERIFY P2 80 | sfi: the key named without SELECT (the form under SM)


class CardInfoKey(IntEnum):
    """The credentials the card-info AP takes (key references)."""

    PIN = CardInfoFile.PIN
    COLLATION_A = CardInfoFile.COLLATION_A  # the 12-digit individual number
    COLLATION_B = CardInfoFile.COLLATION_B  # 和暦 YYMMDD + expiry year + security code


F = CardInfoFile
FREE_FILES = frozenset({F.CV_CERTIFICATE, F.BASIC_INFO})
# RC §4.1: the PIN opens both 0001 and 0002, A only 0001, B only 0002; 0003, 0006 and
# 0007 open with any of them.
OPENS: dict[CardInfoKey, frozenset[int]] = {
    CardInfoKey.PIN: frozenset({F.INDIVIDUAL_NUMBER, F.ATTRIBUTES, F.INTEGRITY,
                                F.SESSION_KEY, F.SIGNED_KEY}),
    CardInfoKey.COLLATION_A: frozenset({F.INDIVIDUAL_NUMBER, F.INTEGRITY, F.SESSION_KEY,
                                        F.SIGNED_KEY}),
    CardInfoKey.COLLATION_B: frozenset({F.ATTRIBUTES, F.INTEGRITY, F.SESSION_KEY,
                                        F.SIGNED_KEY}),
}
DATA_FILES = (F.INDIVIDUAL_NUMBER, F.ATTRIBUTES, F.INTEGRITY, F.CV_CERTIFICATE, F.BASIC_INFO,
              F.SESSION_KEY, F.SIGNED_KEY, F.UNKNOWN_0008)


def readable_with(key: CardInfoKey | None) -> frozenset[int]:
    """The data files a credential opens (None: nothing presented), free ones included."""
    return FREE_FILES | (OPENS[key] if key is not None else frozenset())


class CardInfoApSession(ApplicationSession):
    AID = Aid.CARD_INFO
    PIN_FID = CardInfoFile.PIN

    def __init__(self, channel: ApduChannel, aid: bytes | None = None, *,
                 secure: bool = False) -> None:
        super().__init__(channel, aid)
        self.secure = secure  # commands go under the AP's secure messaging

    def present(self, key: CardInfoKey, secret: str) -> None:
        """VERIFY one credential; raises ``InvalidPinError`` with the tries left. In the
        clear: SELECT the key, then ``00 20 00 80``; under secure messaging the key is
        named by SFI (``00 20 00 80|sfi``, the form the card takes there) and the
        secret travels encrypted. The PIN never goes under secure messaging: it is what
        opens it, so it is presented in the clear first."""
        if not secret:
            raise ValueError("credential must not be empty")
        data = secret.encode("ascii")
        if self.secure:
            if key is CardInfoKey.PIN:
                raise ValueError("the PIN is presented in the clear, before secure messaging")
            apdu = CommandApdu(0x00, Ins.VERIFY, 0x00, P2_KEY_BY_SFI | int(key), data)
            self.channel.send(apdu, sensitive=True)
            return
        self.select_ef(int(key))
        self.channel.send(CommandApdu(0x00, Ins.VERIFY, 0x00, P2_KEY_BY_SFI, data),
                          sensitive=True)

    def key_status(self, key: CardInfoKey | int) -> PinStatus:
        """Tries left of a key reference by empty VERIFY (spends nothing)."""
        if self.secure:  # an empty VERIFY goes in the clear; name the key by SFI
            apdu = CommandApdu(0x00, Ins.VERIFY, 0x00, P2_KEY_BY_SFI | int(key))
            _, sw = self.channel.transceive(apdu)
            return pin_status_of(sw)
        return self.pin_status(int(key))

    def read_file(self, fid: int) -> bytes:
        """The physical content of EF ``fid`` (object and filler), as DF31 covers it."""
        return self.read_physical(fid)

    def read_session_key(self) -> rsa.RSAPublicKey:
        """EF 0006: the RSA key SET SESSION KEY encrypts to (after any credential)."""
        return decode_session_key_file(self.read_file(F.SESSION_KEY))

    def open_secure_messaging(self) -> CardInfoApSession:
        """After the PIN (in the clear): read EF 0006, SET SESSION KEY, and return a
        session of this AP whose SELECT/VERIFY/READ BINARY go under secure messaging."""
        if self.secure:
            raise ValueError("secure messaging is already open")
        channel = open_text_sm(self.channel, self.read_session_key())
        return CardInfoApSession(channel, self.aid, secure=True)

    def read_four_info(self) -> FourInfo:
        return decode_four_info(self.read_tlv_file(CardInfoFile.ATTRIBUTES))

    def read_individual_number(self) -> str:
        return decode_individual_number(self.read_tlv_file(CardInfoFile.INDIVIDUAL_NUMBER))
