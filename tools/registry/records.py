"""What the registry hands out: its rows as frozen dataclasses (also what ``--json``
prints), and the error its rules raise."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from typing import Any

from ..errors import JukiError


class RegistryError(JukiError):
    """A registry rule refused the change (names the rule)."""


def now() -> str:
    """The registry's timestamps: UTC, ISO 8601, to the second."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class Row:
    """A registry row as JSON: every field, with a stored certificate shown only as
    present or not (its bytes are for the verifier, not for the screen)."""

    def as_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]
        if "certificate" in data:
            data["certificate"] = data["certificate"] is not None
        return data


@dataclass(frozen=True)
class CardRecord(Row):
    serial: str
    profile: str
    status: str
    status_reason: str | None
    resident_id: int | None
    resident_code: str | None
    municipality_code: str | None
    expiry: str | None
    certificate: bytes | None
    failure: str | None
    created_at: str
    updated_at: str
    owner: str | None = None  # host:pid of the process issuing it (while ``issuing``)


@dataclass(frozen=True)
class CardEvent(Row):
    serial: str
    at: str
    from_status: str | None
    to_status: str
    reason: str | None


@dataclass(frozen=True)
class OperatorRecord(Row):
    operator_id: str
    name: str
    municipality_code: str
    scopes: str  # comma-separated, sorted
    status: str
    status_reason: str | None
    unix_user: str | None
    card_guid: str | None
    certificate: bytes | None
    locked_at: str | None
    created_at: str
    updated_at: str

    @property
    def scope_set(self) -> frozenset[str]:
        return frozenset(s for s in self.scopes.split(",") if s)

    def as_json(self) -> dict[str, Any]:
        return super().as_json() | {"scopes": sorted(self.scope_set),
                                    "locked": self.locked_at is not None}


@dataclass(frozen=True)
class Denial(Row):
    at: str
    station: str
    operator_id: str | None
    command: str
    scope: str | None
    reason: str


CARD_COLUMNS = ", ".join(f.name for f in fields(CardRecord))
OPERATOR_COLUMNS = ", ".join(f.name for f in fields(OperatorRecord))
