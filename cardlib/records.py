"""Codecs of the resident card's public files (reference §1).

Each ``decode_*`` takes the raw file bytes as read from a card and either returns a
frozen dataclass or raises ``CardDataError`` naming the field that is wrong. The
``encode_*`` functions are used by the issuance station (and the emulator tests).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from . import tlv
from .card_tlv import card_length, card_tlv, children_in_order, object_and_filler
from .checkdigits import is_valid_individual_number, municipality_check_digit
from .errors import CardDataError
from .simple_tlv import encode_simple_tlv, parse_simple_tlvs

TAG_ATTRIBUTES = 0xFF20
TAG_OFFSETS = 0xDF21
TAG_NAME = 0xDF22
TAG_ADDRESS = 0xDF23
TAG_BIRTH_DATE = 0xDF24
TAG_SEX = 0xDF25
TAG_INDIVIDUAL_NUMBER = 0xFF10
TAG_CARD_INFO_RECORD = 0x01

SEX_CODES = {"0": "unknown", "1": "male", "2": "female", "9": "not applicable"}
NAME_MAX_BYTES = 180
ADDRESS_MAX_BYTES = 400
NUMBER_FILE_FILLER = b"\xff\xff"


@dataclass(frozen=True)
class FourInfo:
    """The 4 information (基本4情報): name, address, birth date, sex code."""

    name: str
    address: str
    birth_date: dt.date
    sex: str

    def as_json(self) -> dict[str, str]:
        return {
            "name": self.name,
            "address": self.address,
            "birth_date": self.birth_date.isoformat(),
            "sex": self.sex,
            "sex_label": SEX_CODES.get(self.sex, "?"),
        }


def _utf8(value: bytes, field: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CardDataError(f"{field}: not valid UTF-8") from exc


def parse_yyyymmdd(raw: bytes | str, field: str) -> dt.date:
    text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else raw
    if len(text) != 8 or not text.isascii() or not text.isdigit():
        raise CardDataError(f"{field}: expected 8 digits YYYYMMDD, got {text!r}")
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError as exc:
        raise CardDataError(f"{field}: {text} is not a calendar date") from exc


FOUR_INFO_FIELDS = ((TAG_OFFSETS, "offsets DF21"), (TAG_NAME, "name DF22"),
                    (TAG_ADDRESS, "address DF23"), (TAG_BIRTH_DATE, "birth date DF24"),
                    (TAG_SEX, "sex DF25"))
WHAT_FOUR_INFO = "attributes file"


def encode_four_info(info: FourInfo) -> bytes:
    """EF 0002 of the card-info AP: ``FF 20 { DF21 offsets, DF22..DF25 }`` (RC §4.3).

    DF21 holds four big-endian u16 offsets of DF22..DF25 counted from byte 0 of the
    FILE, the outer FF20 header included.
    """
    name = info.name.encode("utf-8")
    address = info.address.encode("utf-8")
    if len(name) > NAME_MAX_BYTES:
        raise ValueError(f"name is {len(name)} bytes in UTF-8; at most {NAME_MAX_BYTES}")
    if len(address) > ADDRESS_MAX_BYTES:
        raise ValueError(f"address is {len(address)} bytes in UTF-8; at most {ADDRESS_MAX_BYTES}")
    if info.sex not in SEX_CODES:
        raise ValueError(f"sex must be one of {sorted(SEX_CODES)}")
    items = [card_tlv(TAG_NAME, name), card_tlv(TAG_ADDRESS, address),
             card_tlv(TAG_BIRTH_DATE, info.birth_date.strftime("%Y%m%d").encode("ascii")),
             card_tlv(TAG_SEX, info.sex.encode("ascii"))]
    return with_offset_table(TAG_ATTRIBUTES, TAG_OFFSETS, items)


def with_offset_table(outer_tag: int, table_tag: int, items: list[bytes]) -> bytes:
    """``outer { table: u16 file offsets of each item, items… }``, offsets from byte 0
    of the file (the outer header counts)."""
    table_size = 3 + 2 * len(items)  # DFxx <n> and the offsets (n < 128)
    value_size = table_size + sum(len(item) for item in items)
    position = len(tlv.encode_tag(outer_tag) + card_length(value_size)) + table_size
    offsets = bytearray()
    for item in items:
        offsets += position.to_bytes(2, "big")
        position += len(item)
    return card_tlv(outer_tag, card_tlv(table_tag, bytes(offsets)) + b"".join(items))


def checked_offset_table(raw: bytes, outer_tag: int, fields: tuple[tuple[int, str], ...],
                         what: str) -> list[tuple[bytes, bytes]]:
    """Decode ``outer { table, items… }`` (trimmed or physical); every offset in the table
    must equal the item's real position in the file. Returns each item's value and its
    encoded bytes as the file holds them."""
    outer, header = object_and_filler(raw, outer_tag, what)
    found = children_in_order(outer.value, fields, what)
    table, table_field = found[0][0].value, fields[0][1]
    if len(table) != 2 * (len(fields) - 1):
        raise CardDataError(f"{what}: {table_field} must be {2 * (len(fields) - 1)} bytes")
    for index, (_item, position) in enumerate(found[1:]):
        offset = int.from_bytes(table[2 * index:2 * index + 2], "big")
        if offset != header + position:
            raise CardDataError(f"{what}: {table_field} offset {index + 1} is {offset}, but "
                                f"{fields[index + 1][1]} starts at {header + position}")
    ends = [position for _, position in found[2:]] + [len(outer.value)]
    return [(item.value, outer.value[position:end])
            for (item, position), end in zip(found[1:], ends, strict=True)]


def decode_four_info(raw: bytes) -> FourInfo:
    """EF 0002, trimmed or physical; DF21's offsets are checked against the file."""
    name, address, birth, sex_raw = (value for value, _ in checked_offset_table(
        raw, TAG_ATTRIBUTES, FOUR_INFO_FIELDS, WHAT_FOUR_INFO))
    sex = sex_raw.decode("ascii", "replace")
    if sex not in SEX_CODES:
        raise CardDataError(f"attributes file: sex DF25 has unknown code {sex!r}")
    return FourInfo(
        name=_utf8(name, "attributes file: name DF22"),
        address=_utf8(address, "attributes file: address DF23"),
        birth_date=parse_yyyymmdd(birth, "attributes file: birth date DF24"),
        sex=sex,
    )


def encode_individual_number(number: str) -> bytes:
    """The 17-byte physical EF 0001: ``FF 10 0C <12 digits> FF FF`` (RC §4.1)."""
    if not is_valid_individual_number(number):
        raise ValueError("individual number must be 12 digits with a valid check digit")
    return card_tlv(TAG_INDIVIDUAL_NUMBER, number.encode("ascii")) + NUMBER_FILE_FILLER


def decode_individual_number(raw: bytes) -> str:
    """EF 0001, trimmed (15 bytes) or physical (with its filler)."""
    item, _ = object_and_filler(raw, TAG_INDIVIDUAL_NUMBER, "individual number file")
    number = item.value.decode("ascii", "replace")
    if not is_valid_individual_number(number):
        raise CardDataError("individual number file: not 12 digits with a valid check digit")
    return number


@dataclass(frozen=True)
class CardInfoRecord:
    """Common AP EF 0001: card serial, municipality code (6 digits), expiry."""

    card_serial: str
    municipality_code: str
    expiry: dt.date

    def as_json(self) -> dict[str, str]:
        return {
            "card_serial": self.card_serial,
            "municipality_code": self.municipality_code,
            "expiry": self.expiry.isoformat(),
        }


CARD_SERIAL_LENGTH = 15


def encode_card_info_record(record: CardInfoRecord) -> bytes:
    """``01 1C`` + serial(15) + municipality(5, without its check digit) + YYYYMMDD."""
    serial, code = record.card_serial, record.municipality_code
    if len(serial) != CARD_SERIAL_LENGTH or not serial.isdigit():
        raise ValueError("card serial must be 15 digits")
    if len(code) != 6 or not code.isdigit() or municipality_check_digit(code[:5]) != int(code[5]):
        raise ValueError("municipality code must be 6 digits with a valid check digit")
    body = serial + code[:5] + record.expiry.strftime("%Y%m%d")
    return encode_simple_tlv(TAG_CARD_INFO_RECORD, body.encode("ascii"))


def decode_card_info_record(raw: bytes) -> CardInfoRecord:
    """共通AP EF 0001 record 1, a JICSAP simple-TLV record (RC §8), filler tolerated."""
    items = parse_simple_tlvs(raw, "card info record")
    if not items or items[0].tag != TAG_CARD_INFO_RECORD:
        raise CardDataError("card info record: expected tag 01 first")
    value = items[0].value
    if len(value) != 28:
        raise CardDataError("card info record: expected tag 01 with 28 bytes")
    text = value.decode("ascii", "replace")
    if not text.isascii() or not text.isdigit():
        raise CardDataError("card info record: must be 28 ASCII digits")
    serial, code5, expiry = text[:15], text[15:20], text[20:]
    return CardInfoRecord(
        card_serial=serial,
        municipality_code=code5 + str(municipality_check_digit(code5)),
        expiry=parse_yyyymmdd(expiry, "card info record: expiry"),
    )
