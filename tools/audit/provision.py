"""Recording a provision before the release: the purpose check, the entry, the refusal.

`record` appends in its own registry transaction and returns only after the commit
(`record_many`: a group of entries, one transaction and one token MAC);
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

from ..errors import (
    JukiError,
    PermissionDeniedError,
    ProvisionNotRecordedError,
    RequestError,
    StationConfigError,
)
from ..registry import Registry
from ..station.home import StationHome
from . import anchors, log, recipients
from .attestations import Attester
from .events import Actor, EventRecorder

IDENTITY_FIELDS = ("name", "birth_date", "sex", "address")
DEFAULT_ZONE = "Asia/Tokyo"
SELF = "SELF"  # a resident's own disclosure request, proven by their card
REPRESENTATIVE = "REPRESENTATIVE"  # their legal representative (法定代理人)
DISCLOSURE_PURPOSE = "DISCLOSURE"
# The station itself as a recipient: what its operators see at the station (record codes
# in `card list/show`, a holder's signature certificate); never in the recipient table.
STATION = "STATION"
STATION_PURPOSES = {
    "REGISTRY-ADMIN": "登録簿の管理事務（端末での閲覧）",
    "HOLDER-SERVICE": "本人の求めによる署名・署名用証明書の読出し",
    "RECIPIENT-TABLE": "提供先・利用事務の表の変更",
}


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
           detail: str | None = None, requester: dict[str, str] | None = None) -> int:
    """Append one entry (committed when this returns); its index. ``requester`` says
    who asked for a disclosure and how that was established."""
    utc, local = _stamp(release.zone)
    version = current_version(hsm, KeyRole.AUDIT_ENTRY_MAC)
    body = {"time_utc": utc, "time_local": local, "station": release.station,
            "operator": release.operator, "recipient": release.recipient,
            "purpose": release.purpose, "fields": sorted(fields), "resident_id": resident_id,
            "record_code": record_code, "card_serial": card_serial, "detail": detail}
    if requester is not None:
        body["requester"] = dict(requester)
    try:
        with registry.transaction() as db:
            index = log.append(db, body, kind, resident_id,
                               lambda leaf: mac(hsm, version, leaf, KeyRole.AUDIT_ENTRY_MAC),
                               version, Attester(hsm, release.station))
            anchors.write_head(hsm, db, index + 1, log.root(db, index + 1))
            return index
    except Exception as exc:  # a database or token failure: the release must not happen
        raise ProvisionNotRecordedError(
            f"the provision could not be recorded ({type(exc).__name__}: {exc}); "
            "nothing was released") from exc


@dataclass(frozen=True)
class Provided:
    """One provision of a group (``record_many``): what ``record`` takes per entry."""

    fields: tuple[str, ...]
    resident_id: int | None
    record_code: str | None
    detail: str | None
    kind: str = "provision"
    card_serial: str | None = None


def record_many(registry: Registry, hsm: Hsm, release: Release,
                items: list[Provided]) -> list[int]:
    """Append ``items`` as one group commit (``log.append_batch``): one transaction, one
    token MAC over the batch, one token head write; the indexes are returned only after
    the COMMIT, so a caller releases nothing that is not durably recorded (SQLite WAL
    with synchronous=FULL fsyncs at COMMIT; PostgreSQL's default synchronous_commit)."""
    utc, local = _stamp(release.zone)
    try:
        version = current_version(hsm, KeyRole.AUDIT_ENTRY_MAC)
        group = [({"time_utc": utc, "time_local": local, "station": release.station,
                   "operator": release.operator, "recipient": release.recipient,
                   "purpose": release.purpose, "fields": sorted(item.fields),
                   "resident_id": item.resident_id, "record_code": item.record_code,
                   "card_serial": item.card_serial, "detail": item.detail},
                  item.kind, item.resident_id) for item in items]
        with registry.transaction() as db:
            done = log.append_batch(
                db, group, lambda message: mac(hsm, version, message, KeyRole.AUDIT_ENTRY_MAC),
                version, Attester(hsm, release.station))
            anchors.write_head(hsm, db, done.end, done.root)
    except Exception as exc:  # a database or token failure: the release must not happen
        raise ProvisionNotRecordedError(
            f"the provisions could not be recorded ({type(exc).__name__}: {exc}); "
            "nothing of them was released") from exc
    return list(range(done.start, done.end))


def check_purpose(registry: Registry, hsm: Hsm, release: Release, card_serial: str | None,
                  recipients_file: str | None = None) -> None:
    """Refuse (and record the refusal) a purpose the recipient may not use."""
    try:  # the first use loads the configured table, with its event
        recipients.ensure_loaded(registry, Path(recipients_file) if recipients_file else None)
    except JukiError:
        raise
    except Exception as exc:  # a database or token failure: nothing may be released
        raise ProvisionNotRecordedError(
            f"the recipient table could not be loaded with its record ({type(exc).__name__}: "
            f"{exc}); nothing was released") from exc
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


def load_recipients(registry: Registry, hsm: Hsm, release: Release, path: Path) -> list[str]:
    """Add the recipients and purposes of ``path`` to the table. The change and its
    操作履歴 event ``recipient-table-changed`` (the file's SHA-256 and every pair it
    adds) commit in one transaction, or neither does; a file that does not parse changes
    and records nothing. Returns the added pairs."""
    try:
        data = path.read_bytes()  # read once: the digest is of the table loaded
    except OSError as exc:
        raise RequestError("recipients", f"{path}: {exc}") from None
    found = recipients.parse_bytes(data, path)
    # a registry without the station's recorder still records this change
    sink = registry.event_sink or EventRecorder(
        lambda: hsm, lambda: Actor(release.station, release.zone, release.operator, None))
    with registry.transaction() as db:
        added = recipients.add(db, found)
        sink.append(db, recipients.table_event(path, data, added, f"loaded {path.name}"))
        sink.before_commit(db)
    return added
