"""Fuzz targets: the host's parsers of card data, files and request files. Each accepts
any bytes: a parse, or the parser's documented refusal (``CardDataError``; a tools
parser's ``RequestError``), and where an encoder exists, ``decode(encode(x)) == x``."""

from __future__ import annotations

import dataclasses
import datetime as dt

from cardlib import tlv
from cardlib.apdu import CommandApdu, join_response, split_response
from cardlib.constants import PivAlgorithm
from cardlib.errors import CardDataError
from cardlib.integrity import decode_integrity_record, encode_integrity_record
from cardlib.piv_objects import (
    Chuid,
    data_object_content,
    parse_certificate_object,
    parse_dynamic_auth,
    parse_tag_list,
    unpad_pin,
)
from cardlib.public_key import encode_public_key, parse_public_key, parse_rsa_public_key
from cardlib.records import (
    CardInfoRecord,
    FourInfo,
    decode_card_info_record,
    decode_four_info,
    decode_individual_number,
    encode_card_info_record,
    encode_four_info,
    encode_individual_number,
)
from cardlib.registry_records import (
    CodeChange,
    decode_change_request,
    decode_code,
    decode_history,
    encode_change_request,
    encode_history,
)
from cardlib.scp03.host import InitializeUpdateResponse

from .registry import check, refusals, target

SAMPLE_FOUR_INFO = FourInfo("山田　太郎", "東京都千代田区霞が関二丁目1番2号", dt.date(1985, 4, 12), "1")


def _apdu_seeds() -> list[bytes]:
    return [bytes.fromhex(h) for h in (
        "00A4040C0AD3921000310001010408", "00B0000011", "00B00000000100", "0020008000",
        "80AE00000000", "002000800431323334", "00A4020C020001", "0088009920" + "00" * 32 + "00")]


@target("apdu_decode", _apdu_seeds)
def apdu_decode(data: bytes) -> None:
    with refusals(CardDataError):
        apdu = CommandApdu.decode(data)
        again = CommandApdu.decode(apdu.encode())
        check(again == apdu, f"decode(encode(apdu)) changed {apdu} into {again}")


@target("apdu_split_response", lambda: [b"\x90\x00", b"\x01\x02\x61\x10"])
def apdu_split_response(data: bytes) -> None:
    with refusals(CardDataError):
        body, sw = split_response(data)
        check(0 <= sw <= 0xFFFF and join_response(body, sw) == data, "split/join round trip")


@target("tlv_parse_all", lambda: [bytes.fromhex("FF2006DF2103010203"), bytes.fromhex("7F4903810100")])
def tlv_parse_all(data: bytes) -> None:
    with refusals(CardDataError):
        objects = tlv.parse_all(data)
        encoded = b"".join(obj.encode() for obj in objects)
        check(tlv.parse_all(encoded) == objects, "parse_all(encode(objects)) != objects")
        for obj in objects:
            if obj.constructed:
                with refusals(CardDataError):
                    obj.children()
        with refusals(CardDataError):
            tlv.children_by_tag(data, "fuzz")
        with refusals(CardDataError):
            tlv.header_length(data)


@target("records_four_info", lambda: [encode_four_info(SAMPLE_FOUR_INFO)])
def records_four_info(data: bytes) -> None:
    with refusals(CardDataError):
        info = decode_four_info(data)
        with refusals(ValueError):  # a parsed value the encoder's stricter limits refuse
            check(decode_four_info(encode_four_info(info)) == info, "four info round trip")


@target("records_individual_number",
        lambda: [encode_individual_number("123456789018"), encode_individual_number("000000000000")])
def records_individual_number(data: bytes) -> None:
    with refusals(CardDataError):
        number = decode_individual_number(data)
        check(len(number) == 12 and number.isdigit(), f"individual number {number!r}")
        check(decode_individual_number(encode_individual_number(number)) == number, "round trip")


@target("records_card_info_record", lambda: [encode_card_info_record(
        CardInfoRecord("000000000000001", "131016", dt.date(2035, 4, 12)))])
def records_card_info_record(data: bytes) -> None:
    with refusals(CardDataError):
        record = decode_card_info_record(data)
        check(decode_card_info_record(encode_card_info_record(record)) == record, "round trip")


@target("integrity_record", lambda: [encode_integrity_record(bytes(32), b"\x01" * 32, b"\x02" * 256)])
def integrity_record(data: bytes) -> None:
    with refusals(CardDataError):
        record = decode_integrity_record(data)
        again = decode_integrity_record(encode_integrity_record(*dataclasses.astuple(record)))
        check(again == record, "integrity record round trip")
        record.mismatches(data[:8], data[8:16])


def _registry_seeds() -> list[bytes]:
    change = CodeChange(dt.date(2024, 1, 2), "転居", "12345678903")
    return [encode_change_request("12345678903", dt.date(2024, 1, 2), "転居"),
            encode_history([change, change])]


@target("registry_records", _registry_seeds)
def registry_records(data: bytes) -> None:
    with refusals(CardDataError):
        decode_code(data)
    with refusals(CardDataError):
        code, date, reason = decode_change_request(data)
        with refusals(ValueError):
            again = decode_change_request(encode_change_request(code, date, reason))
            check(again == (code, date, reason), "change request round trip")
    with refusals(CardDataError):
        history = decode_history(data)
        with refusals(ValueError):
            check(decode_history(encode_history(history)) == history, "history round trip")


def _piv_seeds() -> list[bytes]:
    chuid = Chuid(guid=bytes(range(16)), fasc_n=bytes(25), expiry="20301231")
    return [chuid.encode(), bytes.fromhex("5C035FC102"), bytes.fromhex("7C0A8200810401020304"),
            bytes.fromhex("530A") + bytes(10)]


@target("piv_objects", _piv_seeds)
def piv_objects(data: bytes) -> None:
    with refusals(CardDataError):
        chuid = Chuid.decode(data)
        check(Chuid.decode(chuid.encode()) == chuid, "CHUID round trip")
    for parse in (parse_certificate_object, parse_dynamic_auth, parse_tag_list,
                  lambda raw: data_object_content(raw, "fuzz")):
        with refusals(CardDataError):
            parse(data)
    unpad_pin(data[:8])


@target("public_key", lambda: [bytes.fromhex("7F490981030100018200"), bytes.fromhex("7F4903860100")])
def public_key(data: bytes) -> None:
    with refusals(CardDataError):
        parse_rsa_public_key(data)
    for algorithm in (PivAlgorithm.RSA_2048, PivAlgorithm.ECC_P256, PivAlgorithm.ECC_P384, 0x00):
        with refusals(CardDataError):
            key = parse_public_key(data, algorithm)
            again = parse_public_key(encode_public_key(key), algorithm)
            check(again.public_numbers() == key.public_numbers(), "public key round trip")


@target("scp03_initialize_update_response",
        lambda: [bytes(10) + bytes((0x30, 0x03, 0x60)) + bytes(16)])
def scp03_initialize_update_response(data: bytes) -> None:
    with refusals(CardDataError):
        InitializeUpdateResponse.parse(data)
