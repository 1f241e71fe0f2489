"""Where PINs come from: a hidden prompt, stdin lines, or a private ``--pin-file``.

PINs never come from argv. A ``Pin`` hides its value from ``repr``/``str`` so that it
cannot leak into logs, exceptions or tracebacks by accident; ``reveal()`` is explicit.
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from ..errors import PinInputError


class Pin:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Pin(<redacted>)"

    __str__ = __repr__


@dataclass(frozen=True)
class PinSpec:
    name: str  # key in a pin file, e.g. "card_info"
    label: str  # what a prompt shows
    min_length: int
    max_length: int
    charset: str
    rule: str  # human wording of the format, used in errors

    def check(self, value: str) -> Pin:
        if not self.min_length <= len(value) <= self.max_length or any(
            c not in self.charset for c in value
        ):
            raise PinInputError(f"PIN {self.name!r} must be {self.rule}")
        return Pin(value)


DIGITS = "0123456789"
CARD_INFO_PIN = PinSpec("card_info", "card-info PIN (4 digits)", 4, 4, DIGITS, "4 digits")
JPKI_AUTH_PIN = PinSpec("jpki_auth", "JPKI authentication PIN (4 digits)", 4, 4, DIGITS, "4 digits")
JPKI_SIGN_PIN = PinSpec("jpki_sign", "JPKI signature PIN (6-16 of A-Z 0-9)", 6, 16,
                        "ABCDEFGHIJKLMNOPQRSTUVWXYZ" + DIGITS, "6 to 16 characters of A-Z and 0-9")
ISSUANCE_PINS = [CARD_INFO_PIN, JPKI_AUTH_PIN, JPKI_SIGN_PIN]
# The card-info AP's other credentials (docs/resident-card.md): 照合番号A is the 12-digit
# individual number, 照合番号B 和暦 YYMMDD of birth + expiry year + the security code.
COLLATION_A = PinSpec("collation_a", "照合番号A (the 12-digit individual number)", 12, 12,
                      DIGITS, "12 digits")
COLLATION_B = PinSpec("collation_b", "照合番号B (14 digits: birth YYMMDD in the era, expiry "
                      "year, security code)", 14, 14, DIGITS, "14 digits")
# `--with pin|a|b`: the one credential a command presents to the card-info AP.
CREDENTIALS: dict[str, PinSpec] = {"pin": CARD_INFO_PIN, "a": COLLATION_A, "b": COLLATION_B}
# The surface AP's keys (`card face --with a|b|dob`): A and B as above, and 0011, the
# birth date as 和暦 YYMMDD (the year of the Japanese era), which opens the age record only.
SURFACE_BIRTH_DATE = PinSpec("surface_birth_date", "birth-date key (6 digits: YYMMDD, YY the "
                             "year of the Japanese era)", 6, 6, DIGITS, "6 digits")
FACE_CREDENTIALS: dict[str, PinSpec] = {"a": COLLATION_A, "b": COLLATION_B,
                                        "dob": SURFACE_BIRTH_DATE}
OPERATOR_PIN = PinSpec("operator_pin", "operator card PIN (6-8 digits)", 6, 8, DIGITS,
                       "6 to 8 digits")
OPERATOR_PUK = PinSpec("operator_puk", "operator card PUK (6-8 digits)", 6, 8, DIGITS,
                       "6 to 8 digits")


@dataclass(frozen=True)
class ResidentCardPins:
    """The three PINs a resident card is issued with."""

    card_info: Pin
    jpki_auth: Pin
    jpki_sign: Pin

    @classmethod
    def from_collected(cls, pins: dict[str, Pin]) -> ResidentCardPins:
        return cls(pins["card_info"], pins["jpki_auth"], pins["jpki_sign"])


def _local_file(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mode


def read_pin_file(path: Path,
                  read: Callable[[Path], tuple[bytes, int]] = _local_file) -> dict[str, str]:
    """``name=value`` lines; refused if group or others may read the file. ``read``
    gives the bytes and mode (through the client, when the station service asks)."""
    try:
        data, mode = read(path)
    except FileNotFoundError:
        raise PinInputError(f"PIN file {path} does not exist") from None
    except OSError as exc:
        raise PinInputError(f"PIN file {path} cannot be read: {exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PinInputError(f"PIN file {path} is readable by others; chmod 600 it")
    values: dict[str, str] = {}
    for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep:
            raise PinInputError(f"PIN file {path} line {number}: expected name=value")
        values[name.strip()] = value.strip()
    return values


def collect_pins(
    specs: list[PinSpec],
    *,
    pin_file: Path | None,
    stdin: TextIO,
    stdin_is_tty: bool,
    prompt: Callable[[PinSpec], str],
    read: Callable[[Path], tuple[bytes, int]] = _local_file,
) -> dict[str, Pin]:
    """Each PIN of ``specs``: from the file if given, else stdin lines, else the prompt."""
    if pin_file is not None:
        values = read_pin_file(pin_file, read)
        missing = [s.name for s in specs if s.name not in values]
        if missing:
            raise PinInputError(f"PIN file {pin_file} lacks: {', '.join(missing)}")
        return {s.name: s.check(values[s.name]) for s in specs}
    if not stdin_is_tty:
        pins = {}
        for spec in specs:
            line = stdin.readline()
            if not line:
                raise PinInputError(f"stdin ended before PIN {spec.name!r}")
            pins[spec.name] = spec.check(line.rstrip("\r\n"))
        return pins
    return {s.name: s.check(prompt(s)) for s in specs}
