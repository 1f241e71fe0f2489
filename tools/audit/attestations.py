"""Every append signed by its station (migration 10): how stations sharing one log check
each other's entries.

A token's audit-entry MAC key authenticates only that token's entries: on a registry
shared by several stations, no station could prove another's entries, so none could sign
a checkpoint over them (``checkpoint_guard``) or verify the log. So each append (one
entry, or one group commit) is also signed by the appending station's Ed25519 log key
(its checkpoint-note key, ``KeyRole.AUDIT_NOTE_SIGNER``) over

    juki-log-append\\n<station id>\\n<start> <end>\\n<base64 MTH(start..end)>\\n

kept in ``log_attestations``. Another station trusts the key only through a certificate
of the station CA it holds outside the database (``tools.registry.log_signers``). The
first line keeps an attestation from ever reading as a checkpoint note (whose first line
is the log's origin) and a checkpoint from ever reading as an attestation.

Own entries are still proven by their MACs (fast, in the token; older entries have only
those): an attestation by one of this token's keys is not needed, and not used.
"""

from __future__ import annotations

import base64
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from hsm import eddsa
from hsm.errors import KeyNotFoundError
from hsm.roles import KeyRole
from hsm.token import Hsm

from ..registry import log_signers
from ..registry.log_signers import SignerKey
from . import merkle
from .verify_macs import Broken

DOMAIN = "juki-log-append"
# the station an entry names, as the database reads it (the entry is canonical JSON)
_STATION_OF_ENTRY = {"sqlite": "json_extract(entry, '$.station')",
                     "postgresql": "(entry::jsonb ->> 'station')"}


def message(station_id: str, start: int, end: int, subtree_root: bytes) -> bytes:
    """What an attestation signs (see the module docstring)."""
    if not 0 <= start < end or len(subtree_root) != 32 or "\n" in station_id:
        raise ValueError(f"an attestation needs 0 <= start < end, a 32-byte root and a "
                         f"one-line station id (got {start}, {end}, {len(subtree_root)} bytes)")
    return (f"{DOMAIN}\n{station_id}\n{start} {end}\n"
            f"{base64.b64encode(subtree_root).decode('ascii')}\n").encode()


# The log key (version, key id) of each open token: looking it up costs a token search
# (1.2 ms, more than the signature) per append. A token session keeps the version it
# first found; a later version (a rotation) is used from the next session on, once the
# station has had it certified (`juki station enroll-registry`).
_LOG_KEYS: weakref.WeakKeyDictionary[Hsm, tuple[int, str]] = weakref.WeakKeyDictionary()


def _log_key(hsm: Hsm) -> tuple[int, str]:
    found = _LOG_KEYS.get(hsm)
    if found is None:
        keys = eddsa.public_keys(hsm, KeyRole.AUDIT_NOTE_SIGNER)
        if not keys:
            raise KeyNotFoundError(f"no {KeyRole.AUDIT_NOTE_SIGNER.value} key in the token "
                                   "(run `juki hsm init`)")
        found = max(keys), log_signers.key_id(keys[max(keys)])
        _LOG_KEYS[hsm] = found
    return found


class Attester:
    """Signs appends for one station with its token's log key."""

    def __init__(self, hsm: Hsm, station_id: str) -> None:
        self.hsm, self.station_id = hsm, station_id

    def attest(self, db: Any, start: int, end: int, subtree_root: bytes) -> None:
        """Sign ``[start, end)`` and keep the signature, inside the caller's transaction."""
        version, key_id = _log_key(self.hsm)
        signature = eddsa.sign(self.hsm, KeyRole.AUDIT_NOTE_SIGNER, version,
                               message(self.station_id, start, end, subtree_root))
        db.execute("INSERT INTO log_attestations (start_idx, end_idx, station_id, key_id, "
                   "signature) VALUES (?, ?, ?, ?, ?)",
                   (start, end, self.station_id, key_id, signature))


@dataclass(frozen=True)
class Attestation:
    start: int
    end: int
    station_id: str
    key_id: str
    signature: bytes


@dataclass(frozen=True)
class Peers:
    """Who this station is, and the station CA certificates through which it trusts other
    stations' log keys (held outside the database: ``registry-tls/station-ca.pem``, or
    the CA home's own token)."""

    station_id: str = ""
    anchors: tuple[x509.Certificate, ...] = ()


class Trust:
    """The log keys a verifier accepts: this token's own (its entries are proven by their
    MACs) and the certified keys of other stations."""

    def __init__(self, own_key_ids: set[str], keys: dict[tuple[str, str], SignerKey]) -> None:
        self.own_key_ids, self.keys = own_key_ids, keys

    def foreign(self, found: Sequence[Attestation]) -> list[Attestation]:
        return [a for a in found if a.key_id not in self.own_key_ids]


def trust_for(db: Any, hsm: Hsm, peers: Peers) -> Trust:
    own = {log_signers.key_id(raw)
           for raw in eddsa.public_keys(hsm, KeyRole.AUDIT_NOTE_SIGNER).values()}
    keys = log_signers.trusted(db, list(peers.anchors)) if peers.anchors else {}
    return Trust(own, keys)


def tail_attestations(db: Any, tail: int) -> list[Attestation]:
    """The ``log_attestations`` rows covering entries from ``tail`` on (the one straddling
    ``tail`` included: it is checked whole), by the primary key."""
    columns = "start_idx, end_idx, station_id, key_id, signature"
    rows = [r for r in db.execute(f"SELECT {columns} FROM log_attestations WHERE start_idx < ? "
                                  "ORDER BY start_idx DESC LIMIT 1", (tail,)) if int(r[1]) > tail]
    rows += db.execute(f"SELECT {columns} FROM log_attestations WHERE start_idx >= ? "
                       "ORDER BY start_idx", (tail,)).fetchall()
    return [Attestation(int(s), int(e), str(st), str(k), bytes(g)) for s, e, st, k, g in rows]


class Covered:
    """Index ranges (sorted, disjoint by the primary key and migration 10's rule) whose
    entries a foreign attestation answers for: no MAC of this token is asked of them."""

    def __init__(self, found: Sequence[Attestation]) -> None:
        self.ranges = sorted((a.start, a.end) for a in found)
        self._position = 0

    def holds(self, index: int) -> bool:
        """Whether ``index`` is covered; asked in increasing order of index."""
        while self._position < len(self.ranges) and self.ranges[self._position][1] <= index:
            self._position += 1
        return (self._position < len(self.ranges)
                and self.ranges[self._position][0] <= index)


def _misnamed(db: Any, found: Sequence[Attestation]) -> Broken | None:
    """The first entry of a foreign attestation's range that names another station (the
    rows streamed in index order: a joining station's first check may cover millions)."""
    ranges = sorted(found, key=lambda a: a.start)
    if not ranges:
        return None
    position = 0
    for index, named in db.execute(f"SELECT idx, {_STATION_OF_ENTRY[db.dialect]} FROM "
                                   "provision_log WHERE idx >= ? AND idx < ? ORDER BY idx",
                                   (ranges[0].start, ranges[-1].end)):
        while position < len(ranges) and ranges[position].end <= index:
            position += 1
        if position == len(ranges):
            break
        attestation = ranges[position]
        if attestation.start <= index and named != attestation.station_id:
            return Broken(int(index), f"entry {index} names station {named!r}, but station "
                                      f"{attestation.station_id!r} signed it")
    return None


def check_foreign(db: Any, trust: Trust, found: Sequence[Attestation], leaves: bytes,
                  leaves_from: int, reached: int, size: int) -> list[Broken]:
    """Problems of foreign attestations (their entries are proven by nothing else): one
    beginning before index 0 or reaching past the log's end (``size`` entries), a key no
    trusted certificate vouches for, a signature that does not verify over the MTH of the
    stored entries (from ``leaves``, the leaf hashes of ``[leaves_from, reached)``), an
    entry naming another station. Attestations past ``reached`` (the scan stopped at an
    earlier problem, which is reported) are not checked further."""
    problems, checked = [], []
    for a in found:
        span = f"entries {a.start}..{a.end - 1}"
        if a.start < 0 or a.end <= a.start:  # (the table refuses both) it would excuse
            # entries from 0 on that nothing here checks, or covers none
            problems.append(Broken(max(a.start, 0), f"{span}: an attestation of station "
                                                    f"{a.station_id!r} that begins before the "
                                                    "log's first entry or covers nothing: "
                                                    "forged"))
            continue
        if a.end > size and reached == size:
            problems.append(Broken(a.start, f"{span}: an attestation of station "
                                            f"{a.station_id!r} reaches past the log's end "
                                            f"({size} entries): forged, or entries deleted"))
            continue
        if a.end > reached:
            continue
        assert a.start >= leaves_from  # the caller read the leaves from the first start on
        key = trust.keys.get((a.station_id, a.key_id))
        if key is None:
            problems.append(Broken(a.start, f"{span}: signed by key {a.key_id} of station "
                                            f"{a.station_id!r}, which no station CA certificate "
                                            "this station trusts vouches for (log_signers), "
                                            "and not by this token"))
            continue
        hashes = [leaves[32 * (i - leaves_from):32 * (i - leaves_from + 1)]
                  for i in range(a.start, a.end)]
        if not key.verifies(a.signature, message(a.station_id, a.start, a.end,
                                                 merkle.root_of(hashes))):
            problems.append(Broken(a.start, f"{span}: the signature of station "
                                            f"{a.station_id!r} does not verify: an entry "
                                            "altered or moved, or the attestation forged"))
            continue
        checked.append(a)
    misnamed = _misnamed(db, checked)
    return problems + ([misnamed] if misnamed else [])
