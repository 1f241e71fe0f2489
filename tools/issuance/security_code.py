"""The card's 4-digit security code (RC §4.2): generated with ``secrets`` at issuance,
part of 照合番号B, printed on the card face (surface EF 0002 DF2A) and returned once in
the issuance answer. It is never stored in the registry nor logged; its ``repr`` hides it.
"""

from __future__ import annotations

import secrets

SECURITY_CODE_DIGITS = 4


class SecurityCode:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if len(value) != SECURITY_CODE_DIGITS or not value.isascii() or not value.isdigit():
            raise ValueError(f"a security code is {SECURITY_CODE_DIGITS} digits")
        self._value = value

    @classmethod
    def generate(cls) -> SecurityCode:
        """Uniform over 0000-9999."""
        return cls(f"{secrets.randbelow(10 ** SECURITY_CODE_DIGITS):0{SECURITY_CODE_DIGITS}d}")

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "SecurityCode(<redacted>)"

    __str__ = __repr__
