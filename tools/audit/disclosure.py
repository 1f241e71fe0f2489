"""A resident's disclosure: the provisions of their identity information (under any of
their record codes, nobody else's), each with its inclusion proof against a fresh
signed checkpoint; and their own identity information as the registry holds it.

Both requests are provisions themselves and are recorded first.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from hsm.token import Hsm

from ..errors import RequestError
from ..registry import Registry
from . import log, merkle
from .attestations import Peers
from .checkpoints import Checkpoint, make_checkpoint, verifier
from .event_list import IncidentalEntry, incidental_information
from .proof_nodes import prefetched_subtree
from .provision import (
    DISCLOSURE_PURPOSE,
    IDENTITY_FIELDS,
    REPRESENTATIVE,
    SELF,
    STATION,
    STATION_PURPOSES,
    Release,
    record,
)
from .recipients import listed

SHOWN_KINDS = ("provision", "disclosure")  # 操作履歴 (kind "event") is 付随情報, not a provision


@dataclass(frozen=True)
class DisclosedEntry:
    index: int
    kind: str
    time_utc: str
    time_local: str
    recipient: str
    recipient_name: str
    purpose: str
    purpose_description: str
    fields: list[str]
    record_code: str | None
    card_serial: str | None
    operator: str | None
    station: str
    inclusion_proof: list[str]
    proof_verified: bool
    requester: dict[str, str] | None = None  # who asked for a disclosure, and how shown


@dataclass(frozen=True)
class DisclosureReport:
    resident_id: int
    record_codes: list[str]
    checkpoint: dict[str, object]
    checkpoint_signature_ok: bool
    entries: list[DisclosedEntry]
    incidental_information: list[IncidentalEntry] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return asdict(self)


def resident_for(registry: Registry, code: str | None, card_serial: str | None) -> int:
    if (code is None) == (card_serial is None):
        raise RequestError("code/card", "give exactly one of --code and --card")
    if code is not None:
        found = registry.resident_of_code(code)
        if found is None:
            raise RequestError("code", f"record code {code} was never assigned")
        return found[0]
    entry = registry.get(card_serial or "")
    if entry is None or entry.resident_id is None:
        raise RequestError("card", f"card {card_serial} belongs to no resident")
    return entry.resident_id


def _names(registry: Registry) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    table = listed(registry)
    recipients = {r.recipient_id: r.name for r in table}
    purposes = {(r.recipient_id, p.code): p.description for r in table for p in r.purposes}
    recipients[SELF] = "本人（開示請求）"
    purposes[(SELF, DISCLOSURE_PURPOSE)] = "住民基本台帳法に基づく本人の開示請求"
    recipients[REPRESENTATIVE] = "法定代理人（開示請求）"
    purposes[(REPRESENTATIVE, DISCLOSURE_PURPOSE)] = "住民基本台帳法に基づく法定代理人による開示請求"
    recipients[STATION] = "本端末（内部閲覧）"
    purposes.update({(STATION, code): text for code, text in STATION_PURPOSES.items()})
    return recipients, purposes


def disclose(registry: Registry, hsm: Hsm, release: Release, resident_id: int,
             fields: list[str], show_codes: bool = True, *,
             checkpoints_file: Path, peers: Peers | None = None) -> tuple[DisclosureReport, Checkpoint]:
    """Record the disclosure, sign a checkpoint over the log including it, then report
    (without ``show_codes`` every record code is left out: the caller lacks read-code).
    The entries are the ones whose authenticated content names the resident."""
    codes = [str(c["code"]) for c in registry.code_history(resident_id)
             if c["status"] in ("active", "retired")] if show_codes else []
    record(registry, hsm, release, kind="disclosure",
           fields=[*fields, *(["record_code"] if show_codes else [])], resident_id=resident_id,
           record_code=registry.active_code(resident_id), card_serial=None)
    checkpoint = make_checkpoint(registry, hsm, checkpoints_file, peers)
    db = registry.connection()
    recipients, purposes = _names(registry)
    entries = []
    logged = log.entries_of_resident(db, resident_id)
    subtree = prefetched_subtree(db, [e.index for e in logged], checkpoint.size)
    for entry in logged:
        fields_of = entry.fields
        if fields_of.get("kind") not in SHOWN_KINDS or entry.index >= checkpoint.size:
            continue
        proof = merkle.inclusion_proof(entry.index, checkpoint.size, subtree)
        ok = merkle.verify_inclusion(entry.index, checkpoint.size, entry.leaf, proof,
                                     checkpoint.root)
        recipient, purpose = str(fields_of["recipient"]), str(fields_of["purpose"])
        entries.append(DisclosedEntry(
            index=entry.index, kind=str(fields_of["kind"]), time_utc=str(fields_of["time_utc"]),
            time_local=str(fields_of["time_local"]), recipient=recipient,
            recipient_name=recipients.get(recipient, recipient), purpose=purpose,
            purpose_description=purposes.get((recipient, purpose), purpose),
            fields=list(fields_of["fields"]),
            record_code=fields_of.get("record_code") if show_codes else None,
            card_serial=fields_of.get("card_serial"), operator=fields_of.get("operator"),
            station=str(fields_of["station"]), inclusion_proof=[p.hex() for p in proof],
            proof_verified=ok, requester=fields_of.get("requester")))
    signed_ok = verifier(db, hsm).ok(checkpoint)
    incidental = incidental_information(logged, checkpoint.size, checkpoint.root, subtree)
    report = DisclosureReport(resident_id, codes, checkpoint.as_json(), signed_ok, entries,
                              incidental)
    return report, checkpoint


def self_information(registry: Registry, hsm: Hsm, release: Release, resident_id: int,
                     requester: dict[str, str], show_codes: bool, *,
                     checkpoints_file: Path, peers: Peers | None = None) -> dict[str, object]:
    """The resident's identity information held and its 付随情報 (the date and reason of
    each change to the 4 information and the record code, each proven in a fresh signed
    checkpoint), recorded as a disclosure (with who asked) first; record codes only
    ``show_codes``."""
    identity = registry.identity_of(resident_id)
    code = registry.active_code(resident_id)
    history = registry.code_history(resident_id) if show_codes else None
    record(registry, hsm, release, kind="disclosure",
           fields=[*IDENTITY_FIELDS, "incidental_information",
                   *(["record_code", "code_history"] if show_codes else [])],
           resident_id=resident_id, record_code=code, card_serial=requester.get("card_serial"),
           requester=requester)
    checkpoint = make_checkpoint(registry, hsm, checkpoints_file, peers)
    db = registry.connection()
    logged = log.entries_of_resident(db, resident_id)
    incidental = incidental_information(logged, checkpoint.size, checkpoint.root,
                                        prefetched_subtree(db, [e.index for e in logged],
                                                           checkpoint.size))
    return {"resident_id": resident_id, "identity": identity,
            "record_code": code if show_codes else None, "code_history": history,
            "incidental_information": [asdict(e) for e in incidental],
            "checkpoint": checkpoint.as_json() | {
                "signature_ok": verifier(db, hsm).ok(checkpoint)},
            "requester": requester,
            "redacted": [] if show_codes else ["record_code", "code_history"]}


def disclosure_release(release: Release, representative: bool) -> Release:
    """The same station and operator; the resident (or their representative) receives."""
    return Release(release.station, release.zone, release.operator,
                   REPRESENTATIVE if representative else SELF, DISCLOSURE_PURPOSE)


def self_release(release: Release) -> Release:
    return disclosure_release(release, representative=False)
