"""The counter set: what the issuer domain's SCP03 level-33 session may do on an issued
(SECURED) card (docs/protocol.md, "Counter session on an issued card"). Everything not
listed here answers 6985 inside that session; outside it the write commands answer 6982.

Each entry says why it is there. What is deliberately absent: the card-info AP's 0001
(the individual number never changes on a card), 0004/0007 and MF objects (the card's CV
chain and signed AP key are bound to the card, not to the holder), the surface AP (its
images and records are the printed face: a new face means a new card), JPKI 0006/0008
(the token info and availability do not change), the 共通AP/card-info presence and
authentication keys (certified in MF 7F21 / card-info 0007), the blocked key 0012, and
照合番号A/B and the surface keys (the card's printed data)."""

from __future__ import annotations

from ..apdu import CommandApdu
from ..constants import (
    Aid,
    CardInfoFile,
    CommonFile,
    Ins,
    JpkiFile,
    JukiFile,
)

CARD_INFO, JPKI, COMMON = Aid.CARD_INFO.hex(), Aid.JPKI.hex(), Aid.COMMON.hex()
JUKI, ISD = Aid.RESIDENT_REGISTRY.hex(), Aid.ISSUER_SECURITY_DOMAIN.hex()


def _fid(value: int) -> str:
    return f"{value:04X}"


# ERASE BINARY and UPDATE BINARY: (AID, EF) -> why.
FILES: dict[tuple[str, str], str] = {
    (CARD_INFO, _fid(CardInfoFile.ATTRIBUTES)): "the 4 information change (move, name, address)",
    (CARD_INFO, _fid(CardInfoFile.INTEGRITY)): "the integrity record is re-signed over them",
    (JPKI, _fid(JpkiFile.SIGN_CERT)): "a new signature certificate (4 information, renewal)",
    (JPKI, _fid(JpkiFile.SIGN_CA_CERT)): "its CA certificate (a CA rotated since issuance)",
    (JPKI, _fid(JpkiFile.AUTH_CERT)): "a new authentication certificate (renewal)",
    (JPKI, _fid(JpkiFile.AUTH_CA_CERT)): "its CA certificate (a CA rotated since issuance)",
}
# UPDATE RECORD: (AID, EF, record) -> why.
RECORDS: dict[tuple[str, str, int], str] = {
    (COMMON, _fid(CommonFile.CARD_INFO_RECORD), 1): "the municipality changes on a move",
}
# GENERATE KEY: (AID, key) -> why.
KEYS: dict[tuple[str, str], str] = {
    (JPKI, _fid(JpkiFile.AUTH_KEY)): "renewal of the authentication certificate",
    (JPKI, _fid(JpkiFile.SIGN_KEY)): "a new signature certificate needs a new key",
}
# RESET RETRY COUNTER: (AID, PIN) -> why. The holder forgot it or blocked it.
PINS: dict[tuple[str, str], str] = {
    (CARD_INFO, _fid(CardInfoFile.PIN)): "the card-info PIN",
    (JPKI, _fid(JpkiFile.AUTH_PIN)): "the JPKI authentication PIN",
    (JPKI, _fid(JpkiFile.SIGN_PIN)): "the JPKI signature PIN",
    (COMMON, _fid(CommonFile.PIN)): "the 共通AP PIN",
    (JUKI, _fid(JukiFile.PIN)): "the 住基AP PIN",
}
# SET STATUS with the issuer domain selected: the wipe of a card whose issuance failed
# (tools/issuance/recovery.py); the lock itself refuses a locked card.
ISD_COMMANDS = (Ins.SET_STATUS,)


def referenced(p2: int, selected_fid: str | None) -> str | None:
    """The key or PIN a P2 names (``80`` the current EF, ``80|fid``), or None."""
    if p2 == 0x80:
        return selected_fid
    if p2 & 0xE0 != 0x80:
        return None
    return _fid(p2 & 0x1F)


def admits(apdu: CommandApdu, aid: str | None, selected_fid: str | None) -> bool:
    """Whether the counter set admits ``apdu`` with application ``aid`` and EF
    ``selected_fid`` current. Only the target is judged here: the command's own
    handler still checks everything else (offsets, formats, P1)."""
    ins = apdu.ins
    if ins == Ins.SELECT:
        return True
    if aid == ISD or aid is None:
        return ins in ISD_COMMANDS
    if ins in (Ins.ERASE_BINARY, Ins.UPDATE_BINARY):
        return not apdu.p1 & 0x80 and (aid, selected_fid or "") in FILES
    if ins == Ins.UPDATE_RECORD:
        return apdu.p2 == 0x04 and (aid, selected_fid or "", apdu.p1) in RECORDS
    if ins == Ins.GENERATE_KEY_PAIR:
        return (aid, referenced(apdu.p2, selected_fid) or "") in KEYS
    if ins == Ins.RESET_RETRY_COUNTER:
        return (aid, referenced(apdu.p2, selected_fid) or "") in PINS
    return False
