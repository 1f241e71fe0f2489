"""Files of the resident-registry AP (ours; docs/protocol.md).

EF 0001: ``C0 0B <11 ASCII digits>`` the resident record code.
EF 0002: ``E0 L { E1 L { C1 08 YYYYMMDD, C2 reason (UTF-8), C3 0B previous code } … }``
the change history (付随情報), oldest first.
Change request (PUT DATA data): ``C0 0B new code, C1 08 date, C2 reason``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from . import tlv
from .checkdigits import is_valid_resident_code
from .errors import CardDataError
from .records import parse_yyyymmdd

TAG_CODE = 0xC0
TAG_DATE = 0xC1
TAG_REASON = 0xC2
TAG_PREVIOUS = 0xC3
TAG_HISTORY = 0xE0
TAG_ENTRY = 0xE1
REASON_MAX_BYTES = 120


@dataclass(frozen=True)
class CodeChange:
    date: dt.date
    reason: str
    previous_code: str

    def as_json(self) -> dict[str, str]:
        return {"date": self.date.isoformat(), "reason": self.reason,
                "previous_code": self.previous_code}


def _code(value: bytes, field: str) -> str:
    text = value.decode("ascii", "replace")
    if not is_valid_resident_code(text):
        raise CardDataError(f"{field}: not 11 digits with a valid check digit")
    return text


def encode_code(code: str) -> bytes:
    if not is_valid_resident_code(code):
        raise ValueError("resident record code must be 11 digits with a valid check digit")
    return tlv.Tlv(TAG_CODE, code.encode("ascii")).encode()


def decode_code(raw: bytes) -> str:
    return _code(tlv.parse_expected(raw, TAG_CODE, "record code file").value, "record code file")


def _check_reason(reason: str) -> bytes:
    encoded = reason.encode("utf-8")
    if not reason.strip() or len(encoded) > REASON_MAX_BYTES or any(ord(c) < 0x20 for c in reason):
        raise ValueError(f"reason must be 1..{REASON_MAX_BYTES} bytes of printable UTF-8")
    return encoded


def encode_change_request(new_code: str, date: dt.date, reason: str) -> bytes:
    return (encode_code(new_code) + tlv.Tlv(TAG_DATE, date.strftime("%Y%m%d").encode()).encode()
            + tlv.Tlv(TAG_REASON, _check_reason(reason)).encode())


def decode_change_request(raw: bytes) -> tuple[str, dt.date, str]:
    items = tlv.children_by_tag(raw, "change request")
    for tag, name in ((TAG_CODE, "new code C0"), (TAG_DATE, "date C1"), (TAG_REASON, "reason C2")):
        if tag not in items:
            raise CardDataError(f"change request: {name} missing")
    reason = items[TAG_REASON].decode("utf-8", "replace")
    return (_code(items[TAG_CODE], "change request"),
            parse_yyyymmdd(items[TAG_DATE], "change request: date"), reason)


def encode_history(changes: list[CodeChange]) -> bytes:
    entries = [tlv.Tlv.build(TAG_ENTRY,
                             tlv.Tlv(TAG_DATE, c.date.strftime("%Y%m%d").encode()),
                             tlv.Tlv(TAG_REASON, _check_reason(c.reason)),
                             tlv.Tlv(TAG_PREVIOUS, c.previous_code.encode()))
               for c in changes]
    return tlv.Tlv.build(TAG_HISTORY, *entries).encode()


def decode_history(raw: bytes) -> list[CodeChange]:
    outer = tlv.parse_expected(raw, TAG_HISTORY, "history file")
    changes = []
    for index, entry in enumerate(outer.children()):
        what = f"history entry {index}"
        fields = tlv.children_by_tag(tlv.check_tag(entry, TAG_ENTRY, what).value, what)
        if not {TAG_DATE, TAG_REASON, TAG_PREVIOUS} <= set(fields):
            raise CardDataError(f"history entry {index}: date C1, reason C2 or code C3 missing")
        try:
            reason = fields[TAG_REASON].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CardDataError(f"history entry {index}: reason is not UTF-8") from exc
        changes.append(CodeChange(parse_yyyymmdd(fields[TAG_DATE], f"history entry {index}: date"),
                                  reason, _code(fields[TAG_PREVIOUS], f"history entry {index}")))
    return changes
