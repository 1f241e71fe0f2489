"""A small, deterministic consumer of fuzz bytes (atheris's FuzzedDataProvider is not
needed to replay an input, so targets run under plain pytest too)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


class Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def byte(self) -> int:
        """The next byte, 0 once the input is used up."""
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def integer(self, size: int) -> int:
        return int.from_bytes(bytes(self.byte() for _ in range(size)), "big")

    def take(self, count: int) -> bytes:
        chunk = self.data[self.pos : self.pos + count]
        self.pos += len(chunk)
        return chunk

    def sized(self, limit: int) -> bytes:
        """A length byte (pair, past 255) and that many bytes, at most ``limit``."""
        size = self.byte()
        if size == 0xFF:
            size = self.integer(2)
        return self.take(min(size, limit))

    def pick(self, choices: Sequence[T]) -> T:
        return choices[self.byte() % len(choices)]

    def chance(self, out_of: int) -> bool:
        """True about once in ``out_of``."""
        return self.byte() % out_of == 0
