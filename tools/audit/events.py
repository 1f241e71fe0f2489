"""操作履歴: who did what. Every change to a card, a resident, an operator, a key or the
recipient table is an entry of kind ``event`` in the tamper-evident provision log, with
the operator who did it, the station, the scope the command ran under and the reason.

An event is appended *inside* the registry transaction that makes the change (the
``Registry`` calls ``EventRecorder.append`` from its write methods), so a change is
never committed without its event, and an event never without its change. The token
head is rewritten once, just before that transaction commits (``before_commit``).
A ``Registry`` without a recorder (tests, the rig's card maker) records no events; the
station always sets one (``tools.service.context.Station``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from hsm.cv_hierarchy import CV_ROLES, rotate_cv_role
from hsm.keys import current_version, latest_version
from hsm.mac import mac
from hsm.roles import KeyRole, parse_label

from ..registry.events import Event
from . import anchors, log
from .attestations import Attester

if TYPE_CHECKING:
    from hsm.token import Hsm

    from ..registry import Registry
    from ..registry.backend import Backend

EVENT_KIND = "event"


@dataclass(frozen=True)
class Actor:
    """Who acts: the station, its time zone, the logged-in operator (None on an open
    station) and the scope the command was authorised under (None: no scope needed)."""

    station: str
    zone: str
    operator: str | None
    scope: str | None


def event_body(actor: Actor, event: Event, now: dt.datetime | None = None) -> dict[str, object]:
    """The entry's fields (``log.append`` adds ``index`` and ``kind``)."""
    moment = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    return {"time_utc": moment.isoformat(),
            "time_local": moment.astimezone(ZoneInfo(actor.zone)).isoformat(),
            "station": actor.station, "operator": actor.operator, "scope": actor.scope,
            "event": event.event, "reason": event.reason, "card_serial": event.card_serial,
            "resident_id": event.resident_id, "subject_operator": event.subject_operator,
            "detail": dict(event.detail)}


class EventRecorder:
    """Appends events inside the registry's write transaction. ``hsm`` and ``actor`` are
    called at the first event (the token and the session open lazily)."""

    def __init__(self, hsm: Callable[[], Hsm], actor: Callable[[], Actor]) -> None:
        self._hsm = hsm
        self._actor = actor
        self._head_due = False

    def append(self, db: Backend, event: Event) -> int:
        hsm = self._hsm()
        version = current_version(hsm, KeyRole.AUDIT_ENTRY_MAC)
        actor = self._actor()
        index = log.append(db, event_body(actor, event), EVENT_KIND, event.resident_id,
                           lambda leaf: mac(hsm, version, leaf, KeyRole.AUDIT_ENTRY_MAC),
                           version, Attester(hsm, actor.station))
        self._head_due = True
        return index

    def before_commit(self, db: Backend) -> None:
        """The token head follows the log: once per transaction that appended events."""
        if self._head_due:
            size = log.size(db)
            anchors.write_head(self._hsm(), db, size, log.root(db, size))
            self._head_due = False

    def discard(self) -> None:
        """The transaction rolled back: its events are gone, the head stays as it was."""
        self._head_due = False


# ---- keys: a change in the token, recorded right after it -----------------------------
# The token and the registry share no transaction: a key is created (or rotated) first —
# the event's MAC may need the very key `hsm init` creates — and its events follow in one
# registry transaction. A failure there is reported by the command (never silent).

def key_created_events(keys: list[tuple[str, bool]]) -> list[Event]:
    """``key-created`` for each (label, created now) that was created: role + version."""
    events = []
    for label, created in keys:
        parsed = parse_label(label)
        if created and parsed is not None:
            events.append(Event("key-created", "hsm init",
                                detail={"role": parsed[0], "version": parsed[1]}))
    return events


def record_key_events(registry: Registry, events: list[Event]) -> None:
    """The events of one token change, in one transaction (nothing when there are none)."""
    if events:
        with registry.transaction() as db:
            for event in events:
                registry._log_event(db, event)


def rotate_cv_key(hsm: Hsm, registry: Registry, role: KeyRole, reason: str) -> int:
    """Rotate a CV role (``hsm.cv_hierarchy.rotate_cv_role``: a CA also rotates the key it
    certifies) and record ``key-rotated`` for every role that got a new version."""
    before = {r: latest_version(hsm, r) for r in CV_ROLES}
    version = rotate_cv_role(hsm, role)
    record_key_events(registry, [
        Event("key-rotated", reason, detail={"role": r.value, "version": new,
                                             "previous": before[r]})
        for r in CV_ROLES if (new := latest_version(hsm, r)) != before[r]])
    return version
