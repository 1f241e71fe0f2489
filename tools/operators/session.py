"""The station's operator session: who is logged in, with which scopes, until when.

Stored in the station home (mode 600) and MAC'd with AES-CMAC by a key that never
leaves the token, so editing the file (more scopes, a later expiry, another operator)
breaks the MAC. Every use re-checks the registry: a suspended, revoked or locked
operator, or a card no longer theirs, ends the session at once; the scopes in force
are those both the session and the registry still grant.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import asdict, dataclass

from cardlib.atomic_file import write_atomically
from hsm.keys import current_version
from hsm.mac import check_mac, mac
from hsm.roles import KeyRole
from hsm.token import Hsm

from ..errors import PermissionDeniedError
from ..registry import OperatorRecord, Registry
from ..station.home import StationHome

SESSION_FORMAT = 1


@dataclass(frozen=True)
class OperatorSession:
    operator_id: str
    scopes: tuple[str, ...]
    station: str
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
                  operator: OperatorRecord) -> OperatorSession:
    """A new session for ``operator``, replacing any other on this station: recorded in
    the registry (with the login) and written to the home."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    session = OperatorSession(
        operator_id=operator.operator_id,
        scopes=tuple(sorted(operator.scope_set)),
        station=home.station_id(),
        card_guid=operator.card_guid or "",
        issued_at=now.isoformat(),
        expires_at=(now + home.operator_policy().session_lifetime).isoformat(),
        session_id=secrets.token_hex(16),
        key_version=current_version(hsm, KeyRole.OPERATOR_SESSION_MAC),
    )
    tag = mac(hsm, session.key_version, session.payload())
    registry.record_login(operator.operator_id, session.station, session.session_id)
    write_atomically(home.session_file, json.dumps(session.as_json() | {"mac": tag.hex()},
                                                   indent=1, sort_keys=True))
    return session


def end_session(home: StationHome, registry: Registry) -> OperatorSession | None:
    """End the station's session (registry and file); returns what it was, if any."""
    try:
        raw = json.loads(home.session_file.read_text(encoding="utf-8"))
        ended = _parse(raw)
    except (OSError, ValueError, KeyError, TypeError):
        ended = None
    registry.end_station_session(home.station_id(), ended.operator_id if ended else None)
    home.session_file.unlink(missing_ok=True)
    return ended


def _parse(raw: dict) -> OperatorSession:
    return OperatorSession(
        operator_id=str(raw["operator_id"]), scopes=tuple(str(s) for s in raw["scopes"]),
        station=str(raw["station"]), card_guid=str(raw["card_guid"]),
        issued_at=str(raw["issued_at"]), expires_at=str(raw["expires_at"]),
        session_id=str(raw["session_id"]), key_version=int(raw["key_version"]))


def current_session(home: StationHome, hsm: Hsm, registry: Registry) -> OperatorSession:
    """The valid session of this station, with the scopes still granted; raises
    ``PermissionDeniedError`` saying why there is none."""
    try:
        raw = json.loads(home.session_file.read_text(encoding="utf-8"))
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
    if registry.current_session_id(session.station) != session.session_id:
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
