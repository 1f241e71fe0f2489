"""Identity requests for issuance: parsed and validated before any card I/O.

Every rejection names the field and the rule (``RequestError``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cardlib.checkdigits import (
    is_valid_individual_number,
    is_valid_municipality_code,
    is_valid_resident_code,
)
from cardlib.records import ADDRESS_MAX_BYTES, NAME_MAX_BYTES, FourInfo

from ..errors import RequestError

REQUIRED = ("name", "birth_date", "sex", "address", "resident_code", "municipality_code")
OPTIONAL = ("name_kana", "individual_number", "photo")
REQUEST_SEX_CODES = ("1", "2", "9")


@dataclass(frozen=True)
class IdentityRequest:
    name: str
    birth_date: dt.date
    sex: str
    address: str
    resident_code: str
    municipality_code: str
    name_kana: str | None = None
    individual_number: str | None = None
    photo: bytes | None = None  # the JPEG or PNG the request's ``photo`` names, checked

    def four_info(self) -> FourInfo:
        return FourInfo(self.name, self.address, self.birth_date, self.sex)

    def __repr__(self) -> str:  # identity data stays out of logs and tracebacks
        return "IdentityRequest(<redacted>)"


def _text(raw: dict[str, Any], field: str, max_bytes: int) -> str:
    value = raw[field]
    if not isinstance(value, str) or not value.strip():
        raise RequestError(field, "must be a non-empty string")
    if any(ord(c) < 0x20 for c in value):
        raise RequestError(field, "must not contain control characters")
    if len(value.encode("utf-8")) > max_bytes:
        raise RequestError(field, f"must be at most {max_bytes} bytes in UTF-8")
    return value


def _digits(raw: dict[str, Any], field: str, length: int, valid: Any, what: str) -> str:
    value = raw[field]
    if not isinstance(value, str) or len(value) != length or not value.isascii() or not value.isdigit():
        raise RequestError(field, f"must be a string of exactly {length} digits")
    if not valid(value):
        raise RequestError(field, f"check digit is wrong ({what})")
    return value


def _photo(raw: dict[str, Any], read_photo: Callable[[str], bytes] | None) -> bytes | None:
    """The image the ``photo`` field names (a JPEG or PNG path, relative to the request
    file), read through ``read_photo`` and checked (see ``card_face_images.check_photo``)."""
    from .card_face_images import check_photo

    path = raw.get("photo")
    if path is None:
        return None
    if not isinstance(path, str) or not path.strip() or any(ord(c) < 0x20 for c in path):
        raise RequestError("photo", "must be the path of a JPEG or PNG file")
    if read_photo is None:
        raise RequestError("photo", "a photo path needs a request file to be read against")
    try:
        data = read_photo(path)
    except OSError as exc:
        raise RequestError("photo", f"cannot read {path}: {exc.strerror or exc}") from None
    check_photo(data)
    return data


def parse_request(raw: Any, read_photo: Callable[[str], bytes] | None = None) -> IdentityRequest:
    """``raw`` validated; ``read_photo`` reads the file a ``photo`` field names."""
    if not isinstance(raw, dict):
        raise RequestError("(request)", "must be a JSON object")
    for field in REQUIRED:
        if field not in raw or raw[field] is None:
            raise RequestError(field, "is required")
    unknown = sorted(set(raw) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise RequestError(unknown[0], "is not a known field")
    birth = raw["birth_date"]
    if not isinstance(birth, str) or len(birth) != 10:
        raise RequestError("birth_date", "must be a date YYYY-MM-DD")
    try:
        birth_date = dt.date.fromisoformat(birth)
    except ValueError:
        raise RequestError("birth_date", f"{birth!r} is not a calendar date YYYY-MM-DD") from None
    if birth_date > dt.date.today() or birth_date.year < 1870:
        raise RequestError("birth_date", "must be in the past and after 1870")
    if raw["sex"] not in REQUEST_SEX_CODES:
        raise RequestError("sex", f"must be one of {', '.join(REQUEST_SEX_CODES)} (JIS X 0303)")
    number = raw.get("individual_number")
    kana = raw.get("name_kana")
    return IdentityRequest(
        name=_text(raw, "name", NAME_MAX_BYTES),
        birth_date=birth_date,
        sex=raw["sex"],
        address=_text(raw, "address", ADDRESS_MAX_BYTES),
        resident_code=_digits(raw, "resident_code", 11, is_valid_resident_code,
                              "modulus 11, weights 2-7"),
        municipality_code=_digits(raw, "municipality_code", 6, is_valid_municipality_code,
                                  "modulus 11, weights 6-2"),
        name_kana=_text(raw, "name_kana", NAME_MAX_BYTES) if kana is not None else None,
        individual_number=(
            _digits(raw, "individual_number", 12, is_valid_individual_number, "ordinance No. 85")
            if number is not None else None
        ),
        photo=_photo(raw, read_photo),
    )


def read_text_file(path: Path, read: Callable[[Path], bytes] = Path.read_bytes) -> str:
    """The UTF-8 text of a request or batch file; ``read`` fetches its bytes (through the
    client when the station service runs the command: the service never opens a client's
    path). A file that cannot be read or decoded is a ``RequestError`` naming it."""
    try:
        return read(path).decode("utf-8")
    except OSError as exc:
        raise RequestError("(file)", f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise RequestError("(file)", f"{path} is not UTF-8") from None


def photo_reader(request_file: Path,
                 read: Callable[[Path], bytes] = Path.read_bytes) -> Callable[[str], bytes]:
    """Reads a ``photo`` path of the request in ``request_file`` (relative to its
    directory) through ``read``, like the request itself."""
    return lambda photo: read(Path(request_file).parent / photo)


def load_request(path: Path, read: Callable[[Path], bytes] = Path.read_bytes) -> IdentityRequest:
    """The request in ``path`` (see ``read_text_file``), validated; a ``photo`` it names
    is read the same way."""
    text = read_text_file(path, read)
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RequestError("(file)", f"malformed JSON at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:  # found by tests/fuzz (request_file): [[[[… a thousand deep
        raise RequestError("(file)", "JSON nested too deeply") from None
    return parse_request(raw, photo_reader(path, read))
