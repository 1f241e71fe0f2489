"""What the registry tells the event log about each change it commits (操作履歴; the
log itself is ``tools.audit.events``, above the registry). The registry calls its
``EventSink`` inside the write transaction of the change."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .backend import Backend

DetailValue = str | int | bool | None


@dataclass(frozen=True)
class Event:
    """One change. ``event`` names it (``card-active``, ``move-in``, ``pin-reset`` …);
    ``detail`` holds what else a reader needs (never a secret: no PIN, no key)."""

    event: str
    reason: str | None = None
    card_serial: str | None = None
    resident_id: int | None = None
    subject_operator: str | None = None  # the operator an operator-life-cycle event is about
    detail: Mapping[str, DetailValue] = field(default_factory=dict)


class EventSink(Protocol):
    def append(self, db: Backend, event: Event) -> int: ...
    def before_commit(self, db: Backend) -> None: ...
    def discard(self) -> None: ...
