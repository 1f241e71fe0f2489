"""Signed checkpoints of the provision log and the full verification of the log.

A checkpoint is a note in the C2SP tlog-checkpoint shape (origin, size, base64 root,
then our time line) signed with sha256WithRSAEncryption by the token's audit key.
`verify_log` recomputes every leaf, checks every entry's MAC (which covers its index),
the index sequence and every checkpoint's signature and root; it names the first bad
index (modified, deleted, inserted, moved entries; a truncated log).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from hsm.ca import TokenKey, certificates_by_version
from hsm.mac import first_bad_mac
from hsm.roles import KeyRole, label_for
from hsm.token import Hsm

from ..registry import Registry
from ..registry.backend import Backend
from . import log, merkle

ORIGIN = "juki provision log"
VERIFY_BATCH = 4096


@dataclass(frozen=True)
class Checkpoint:
    size: int
    root: bytes
    at: str
    key_label: str
    signature: bytes

    def note(self) -> bytes:
        return (f"{ORIGIN}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"
                f"{self.at}\n").encode()

    def as_json(self) -> dict[str, object]:
        return {"size": self.size, "root": self.root.hex(), "at": self.at,
                "key_label": self.key_label, "signature": base64.b64encode(self.signature).decode()}


def checkpoints(db: Backend) -> list[Checkpoint]:
    rows = db.execute("SELECT size, root, at, key_label, signature FROM audit_checkpoints "
                      "ORDER BY size")
    return [Checkpoint(int(s), bytes(r), str(a), str(k), bytes(g)) for s, r, a, k, g in rows]


def latest(db: Backend) -> Checkpoint | None:
    found = checkpoints(db)
    return found[-1] if found else None


def make_checkpoint(registry: Registry, hsm: Hsm) -> Checkpoint:
    """Sign (size, root, time) of the log as it is now; the log unchanged since the last
    checkpoint gives that one back."""
    signer = TokenKey.current(hsm, KeyRole.AUDIT_SIGNER)
    label = signer.signer.label
    with registry.transaction() as db:
        size = log.size(db)
        previous = latest(db)
        if previous is not None and previous.size == size:
            return previous
        at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        unsigned = Checkpoint(size, log.root(db, size), at, label, b"")
        signature = signer.signer.sign(unsigned.note(), padding.PKCS1v15(), hashes.SHA256())
        db.execute("INSERT INTO audit_checkpoints (size, root, at, key_label, signature) "
                   "VALUES (?, ?, ?, ?, ?)", (size, unsigned.root, at, label, signature))
    return Checkpoint(size, unsigned.root, at, label, signature)


def audit_certificates(hsm: Hsm) -> dict[str, x509.Certificate]:
    return {label_for(KeyRole.AUDIT_SIGNER, version): cert for version, cert in
            certificates_by_version(hsm, KeyRole.AUDIT_SIGNER).items()}


def signature_ok(checkpoint: Checkpoint, certificates: dict[str, x509.Certificate]) -> bool:
    cert = certificates.get(checkpoint.key_label)
    key = cert.public_key() if cert else None
    if not isinstance(key, rsa.RSAPublicKey):
        return False
    try:
        key.verify(checkpoint.signature, checkpoint.note(), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True)
class LogVerdict:
    ok: bool
    size: int  # entries in the log (also when it is not intact)
    checkpoints: int
    first_bad_index: int | None
    problem: str | None

    def as_json(self) -> dict[str, object]:
        return dict(vars(self))


def _entry_problem(index: int, raw: str) -> str | None:
    try:
        fields = json.loads(raw)
    except ValueError:
        return "not JSON"
    if not isinstance(fields, dict) or fields.get("index") != index:
        return f"names index {fields.get('index') if isinstance(fields, dict) else '?'}"
    if log.canonical(fields).decode("utf-8") != raw:
        return "not in canonical form"
    return None


def _unsigned_checkpoint(signed: list[Checkpoint],
                         certificates: dict[str, x509.Certificate]) -> str | None:
    """The first checkpoint whose signature does not verify, named; else None."""
    for checkpoint in signed:
        if not signature_ok(checkpoint, certificates):
            return f"checkpoint at size {checkpoint.size}: signature does not verify"
    return None


def verify_log(db: Backend, hsm: Hsm) -> LogVerdict:
    """Recompute and check everything (see the module docstring)."""
    signed = checkpoints(db)
    if (problem := _unsigned_checkpoint(signed, audit_certificates(hsm))) is not None:
        return LogVerdict(False, log.size(db), len(signed), None, problem)
    pending = iter(signed)
    next_checkpoint = next(pending, None)
    stack: list[tuple[int, bytes]] = []
    expected = 0
    batch: list[tuple[int, bytes, bytes]] = []
    batch_version = 0  # the MAC key version of every entry in ``batch``

    def flush() -> LogVerdict | None:
        if not batch:
            return None
        bad = first_bad_mac(hsm, batch_version, [(leaf, tag) for _, leaf, tag in batch],
                            KeyRole.AUDIT_ENTRY_MAC)
        if bad is not None:
            index = batch[bad][0]
            return LogVerdict(False, log.size(db), len(signed), index,
                              f"entry {index}: MAC does not verify (altered or not ours)")
        batch.clear()
        return None

    def fail(index: int, problem: str) -> LogVerdict:
        return LogVerdict(False, log.size(db), len(signed), index, problem)

    while next_checkpoint is not None and next_checkpoint.size == 0:
        if next_checkpoint.root != merkle.EMPTY_ROOT:
            return fail(0, "the checkpoint of the empty log has a wrong root")
        next_checkpoint = next(pending, None)
    rows = db.execute("SELECT idx, entry, mac, mac_version FROM provision_log ORDER BY idx")
    for index, raw, tag, version in rows:
        if index != expected:
            return flush() or fail(expected, f"entry {expected} is missing (next is {index})")
        problem = _entry_problem(index, raw)
        if problem:
            return flush() or fail(index, f"entry {index}: {problem}")
        leaf = merkle.leaf_hash(raw.encode("utf-8"))
        if version != batch_version and (result := flush()):
            return result
        batch_version = int(version)
        batch.append((index, leaf, bytes(tag)))
        if len(batch) >= VERIFY_BATCH and (result := flush()):
            return result
        merkle.push(stack, leaf)
        expected += 1
        while next_checkpoint is not None and next_checkpoint.size == expected:
            if merkle.fold(stack) != next_checkpoint.root:
                return flush() or fail(expected - 1, f"root at checkpoint size {expected} "
                                                     "differs from the signed root")
            next_checkpoint = next(pending, None)
    if (result := flush()):
        return result
    if next_checkpoint is not None:
        return fail(expected, f"log truncated: {expected} entries, but a checkpoint signed "
                              f"{next_checkpoint.size}")
    return LogVerdict(True, expected, len(signed), None, None)
