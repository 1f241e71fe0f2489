"""Recording a provision before the release: the purpose check, the entry, the refusal.

`record` appends in its own registry transaction and returns only after the commit;
callers print or return identity information only after it returned, so a failed write
(a full disk, a lost database) releases nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hsm.keys import current_version
from hsm.mac import mac
from hsm.roles import KeyRole
from hsm.token import Hsm

from ..errors import PermissionDeniedError, ProvisionNotRecordedError, StationConfigError
from ..registry import Registry
from ..station.home import StationHome
from . import log, recipients

IDENTITY_FIELDS = ("name", "birth_date", "sex", "address")
DEFAULT_ZONE = "Asia/Tokyo"
SELF = "SELF"  # a resident's own disclosure request
DISCLOSURE_PURPOSE = "DISCLOSURE"


@dataclass(frozen=True)
class Release:
    """Who receives what, for which purpose, at which station."""

    station: str
    zone: str
    operator: str | None
    recipient: str
    purpose: str


def release_for(home: StationHome, operator: str | None, recipient: str, purpose: str) -> Release:
    zone = str(home.settings().get("station", {}).get("timezone", DEFAULT_ZONE))
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise StationConfigError(f"[station] timezone {zone!r} is not a known time zone") from None
    return Release(home.station_id(), zone, operator, recipient, purpose)


def _stamp(zone: str) -> tuple[str, str]:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return now.isoformat(), now.astimezone(ZoneInfo(zone)).isoformat()


def record(registry: Registry, hsm: Hsm, release: Release, *, kind: str, fields: list[str],
           resident_id: int | None, record_code: str | None, card_serial: str | None,
           detail: str | None = None) -> int:
    """Append one entry (committed when this returns); its index."""
    utc, local = _stamp(release.zone)
    version = current_version(hsm, KeyRole.AUDIT_ENTRY_MAC)
    body = {"time_utc": utc, "time_local": local, "station": release.station,
            "operator": release.operator, "recipient": release.recipient,
            "purpose": release.purpose, "fields": sorted(fields), "resident_id": resident_id,
            "record_code": record_code, "card_serial": card_serial, "detail": detail}
    try:
        with registry.transaction() as db:
            return log.append(db, body, kind, resident_id,
                              lambda leaf: mac(hsm, version, leaf, KeyRole.AUDIT_ENTRY_MAC),
                              version)
    except Exception as exc:  # a database or token failure: the release must not happen
        raise ProvisionNotRecordedError(
            f"the provision could not be recorded ({type(exc).__name__}: {exc}); "
            "nothing was released") from exc


def check_purpose(registry: Registry, hsm: Hsm, release: Release, card_serial: str | None,
                  recipients_file: str | None = None) -> None:
    """Refuse (and record the refusal) a purpose the recipient may not use."""
    recipients.ensure_loaded(registry, Path(recipients_file) if recipients_file else None)
    if recipients.purpose_of(registry, release.recipient, release.purpose) is None:
        record(registry, hsm, release, kind="refusal", fields=[], resident_id=None,
               record_code=None, card_serial=card_serial,
               detail="purpose not permitted to this recipient")
        raise PermissionDeniedError(
            f"recipient {release.recipient!r} may not receive identity information for "
            f"purpose {release.purpose!r} (refused and recorded; see `juki audit recipients`)")


def resident_of_card(registry: Registry, card_serial: str | None) -> tuple[int | None, str | None]:
    """(resident id, their active record code) for a registered card."""
    entry = registry.get(card_serial) if card_serial else None
    if entry is None or entry.resident_id is None:
        return None, None
    return entry.resident_id, registry.active_code(entry.resident_id)
