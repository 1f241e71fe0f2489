"""Fuzz targets: the tools' parsers of files an operator hands in: issuance request
files, batch files, the extra trust-anchors file. Each gives its result or its own
documented error naming the field (RequestError, StationConfigError), nothing else."""

from __future__ import annotations

import json
from pathlib import Path

from .reader import Reader
from .registry import refusals, target

REQUEST_FIELDS = ("name", "birth_date", "sex", "address", "resident_code", "municipality_code",
                  "name_kana", "individual_number", "photo", "other")
REQUEST_VALUES = ("山田　太郎", "1985-04-12", "1", "2", "9", "12345678903", "131016", "987654321093",
                  "", "0000-00-00", "2999-01-01", "x" * 400)


def _json_value(reader: Reader, depth: int = 0) -> object:
    kind = reader.byte() % 10
    if kind < 4 or depth > 3:
        return reader.pick(REQUEST_VALUES)
    if kind == 4:
        return reader.integer(2) - 1000
    if kind == 5:
        return reader.pick((None, True, False, 1.5, float("nan")))
    if kind == 6:
        return [_json_value(reader, depth + 1) for _ in range(reader.byte() % 3)]
    if kind == 7:
        return {reader.pick(REQUEST_FIELDS): _json_value(reader, depth + 1)}
    if kind == 8:
        return reader.sized(40).decode("utf-8", "replace")
    return None


def _request_text(data: bytes) -> bytes:
    """Raw bytes (1 in 4), else a JSON object of the request's fields with fuzzed values."""
    reader = Reader(data)
    if reader.chance(4):
        return data[1:]
    if reader.chance(16):  # deep nesting, as a hostile file has it
        depth = reader.integer(2) % 4000
        return b"{\"name\": " + b"[" * depth + b"]" * depth + b"}"
    request: dict[str, object] = {}
    for name in REQUEST_FIELDS:
        if not reader.chance(8):
            request[name] = (reader.pick(REQUEST_VALUES) if reader.byte() & 1
                             else _json_value(reader))
    return json.dumps(request, ensure_ascii=reader.byte() & 1 == 0).encode()


@target("request_file", lambda: [bytes(64), b'{"name": "x", "birth_date": "1985-04-12", "sex": "1"}'])
def request_file(data: bytes) -> None:
    """An issuance request file (tools/issuance/request.py): a request or RequestError."""
    from tools.errors import RequestError
    from tools.issuance.request import load_request

    text = _request_text(data)
    with refusals(RequestError):
        load_request(Path("request.json"), read=lambda _path: text)


def _batch_text(data: bytes) -> bytes:
    """Lines of request texts (each from a slice of the input)."""
    reader = Reader(data)
    lines = [_request_text(reader.sized(300)) for _ in range(1 + reader.byte() % 4)]
    return b"\n".join(line.replace(b"\n", b" ") for line in lines)


@target("batch_file", lambda: [bytes(64), bytes(range(128))])
def batch_file(data: bytes) -> None:
    """A batch file: one outcome per non-empty line (a bad line is 'rejected' with its
    reason), or a RequestError for the file as a whole."""
    from tools.errors import RequestError
    from tools.issuance.batch import parse_batch

    text = _batch_text(data)
    with refusals(RequestError):
        parse_batch(Path("batch.jsonl"), read=lambda _path: text)


def _anchors_seed() -> bytes:
    from cardlib.trust_anchors import PUBLISHED_ANCHORS

    modulus = PUBLISHED_ANCHORS[0].public_key().public_numbers().n
    return (f'[[anchor]]\nname = "extra"\nkey_id = "7000020/002"\nmodulus = "{modulus:X}"\n'
            f'exponent = 65537\n').encode()


@target("trust_anchors_file", lambda: [_anchors_seed()])
def trust_anchors_file(data: bytes) -> None:
    """The extra trust-anchors TOML file: anchors, or StationConfigError naming the entry."""
    from tools.errors import StationConfigError
    from tools.station.trust import load_extra

    with refusals(StationConfigError):
        load_extra(Path("anchors.toml"), read=lambda _path: data)
