"""Operator sessions: who is logged in, for which caller, with which scopes, until when.

A session belongs to one caller (the uid the station service got from the kernel, or
this process's uid when run locally) and one operator card: each uid has its own, so
one operator's login never lends scopes to another account. Stored in the station home
(``sessions/uid-<uid>.json``, mode 600, out of the clients' reach when a service runs)
and MAC'd with AES-CMAC by a key that never leaves the token, so editing the file (more
scopes, a later expiry, another operator or uid) breaks the MAC. Every use re-checks
the registry: a suspended, revoked or locked operator, or a card no longer theirs, ends
the session at once; the scopes in force are those both the session and the registry
still grant.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from cardlib.atomic_file import write_atomically
from hsm.keys import current_version
from hsm.mac import check_mac, mac
from hsm.roles import KeyRole
from hsm.token import Hsm

from ..errors import PermissionDeniedError
from ..registry import OperatorRecord, Registry
from ..station.caller import caller
from ..station.home import StationHome

SESSION_FORMAT = 2  # 2: bound to the caller's uid


def session_file(home: StationHome, uid: int) -> Path:
    return home.root / "sessions" / f"uid-{uid}.json"


def session_slot(home: StationHome, uid: int) -> str:
    """The registry's name for this caller's one current session on this station."""
    return f"{home.station_id()} uid {uid}"


@dataclass(frozen=True)
class OperatorSession:
    operator_id: str
    scopes: tuple[str, ...]
    station: str
    uid: int
    card_guid: str
    issued_at: str
    expires_at: str
    session_id: str
    key_version: int

    def payload(self) -> bytes:
        """The canonical bytes the MAC covers."""
        body = asdict(self) | {"format": SESSION_FORMAT, "scopes": sorted(self.scopes)}
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")

    def as_json(self) -> dict[str, object]:
        return asdict(self) | {"scopes": sorted(self.scopes)}


def _utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def start_session(home: StationHome, hsm: Hsm, registry: Registry,
                  operator: OperatorRecord, uid: int | None = None) -> OperatorSession:
    """A new session of ``operator`` for caller ``uid`` (default: the current caller),
    replacing that caller's previous one: recorded in the registry (with the login) and
    written to the home."""
    uid = caller().uid if uid is None else uid
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    session = OperatorSession(
        operator_id=operator.operator_id,
        scopes=tuple(sorted(operator.scope_set)),
        station=home.station_id(),
        uid=uid,
        card_guid=operator.card_guid or "",
        issued_at=now.isoformat(),
        expires_at=(now + home.operator_policy().session_lifetime).isoformat(),
        session_id=secrets.token_hex(16),
        key_version=current_version(hsm, KeyRole.OPERATOR_SESSION_MAC),
    )
    tag = mac(hsm, session.key_version, session.payload())
    registry.record_login(operator.operator_id, session_slot(home, uid), session.session_id)
    session_file(home, uid).parent.mkdir(mode=0o700, exist_ok=True)
    write_atomically(session_file(home, uid), json.dumps(session.as_json() | {"mac": tag.hex()},
                                                   indent=1, sort_keys=True))
    return session


def end_session(home: StationHome, registry: Registry,
                uid: int | None = None) -> OperatorSession | None:
    """End the caller's session (registry and file); returns what it was, if any."""
    uid = caller().uid if uid is None else uid
    path = session_file(home, uid)
    try:
        ended = _parse(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        ended = None
    registry.end_station_session(session_slot(home, uid), ended.operator_id if ended else None)
    path.unlink(missing_ok=True)
    return ended


def _parse(raw: dict) -> OperatorSession:
    return OperatorSession(
        operator_id=str(raw["operator_id"]), scopes=tuple(str(s) for s in raw["scopes"]),
        station=str(raw["station"]), uid=int(raw["uid"]), card_guid=str(raw["card_guid"]),
        issued_at=str(raw["issued_at"]), expires_at=str(raw["expires_at"]),
        session_id=str(raw["session_id"]), key_version=int(raw["key_version"]))


def current_session(home: StationHome, hsm: Hsm, registry: Registry,
                    uid: int | None = None) -> OperatorSession:
    """The caller's valid session on this station, with the scopes still granted; raises
    ``PermissionDeniedError`` saying why there is none."""
    uid = caller().uid if uid is None else uid
    try:
        raw = json.loads(session_file(home, uid).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PermissionDeniedError("no operator is logged in: run `juki login`") from None
    except (OSError, ValueError) as exc:
        raise PermissionDeniedError(f"the session file is unreadable ({exc})") from None
    try:
        session = _parse(raw)
        tag = bytes.fromhex(str(raw["mac"]))
    except (KeyError, TypeError, ValueError):
        raise PermissionDeniedError("the session file is malformed") from None
    if not check_mac(hsm, session.key_version, session.payload(), tag):
        raise PermissionDeniedError("the session's MAC does not verify (the file was altered)")
    if session.station != home.station_id():
        raise PermissionDeniedError(f"the session belongs to station {session.station}")
    if session.uid != uid:
        raise PermissionDeniedError(f"the session belongs to uid {session.uid}, not to uid {uid}")
    if registry.current_session_id(session_slot(home, uid)) != session.session_id:
        raise PermissionDeniedError("the session was ended (logout or a newer login)")
    try:
        expired = dt.datetime.now(dt.UTC) >= _utc(session.expires_at)
    except ValueError:
        raise PermissionDeniedError("the session's expiry is malformed") from None
    if expired:
        raise PermissionDeniedError(f"the session expired at {session.expires_at}: log in again")
    operator = registry.operator(session.operator_id)
    if operator is None or operator.status != "active":
        state = "unknown" if operator is None else operator.status
        raise PermissionDeniedError(f"operator {session.operator_id} is {state}: session ended")
    if operator.locked_at is not None:
        raise PermissionDeniedError(f"operator {session.operator_id} is locked: session ended")
    if operator.card_guid != session.card_guid:
        raise PermissionDeniedError("the operator's card changed since login: session ended")
    granted = tuple(sorted(set(session.scopes) & operator.scope_set))
    return OperatorSession(**(asdict(session) | {"scopes": granted}))
