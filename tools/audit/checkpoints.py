"""Signed checkpoints of the provision log.

A checkpoint is a C2SP signed note (``note.py``) over the tlog-checkpoint body of the
log (origin, size, base64 root, then our time line), signed with Ed25519 by the token's
``audit-checkpoint-note-signer`` key. Making one stores it three ways, in the database's
write transaction: a row in ``audit_checkpoints``, the token head (``anchors.py``) and a
note appended to the checkpoint file outside the database. Rows made before the notes
(sha256WithRSAEncryption by ``audit-checkpoint-signer``) keep verifying.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from hsm import eddsa
from hsm.ca import certificates_by_version
from hsm.keys import current_version
from hsm.roles import KeyRole, label_for
from hsm.token import Hsm

from ..errors import LogTamperedError
from ..registry import Registry
from ..registry.backend import Backend
from . import anchors, log, note
from .attestations import Peers, Trust, trust_for
from .checkpoint_guard import proven_root

LEGACY_ORIGIN = "juki provision log"


@dataclass(frozen=True)
class Checkpoint:
    size: int
    root: bytes
    at: str
    key_label: str
    signature: bytes
    signer: str = ""  # the station that made it; '' before migration 10

    def note_text(self, origin: str) -> str:
        return note.body(origin, self.size, self.root, (self.at,))

    def legacy_note(self) -> bytes:
        return (f"{LEGACY_ORIGIN}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"
                f"{self.at}\n").encode()

    def as_json(self) -> dict[str, object]:
        return {"size": self.size, "root": self.root.hex(), "at": self.at,
                "key_label": self.key_label, "signature": base64.b64encode(self.signature).decode()}


def checkpoints(db: Backend, signer: str | None = None) -> list[Checkpoint]:
    """The checkpoints of one station (``signer``: its station id; with the rows made
    before migration 10, signer ''), or every row (None: a log one station writes).
    Another station's checkpoints are that station's anchors, never this one's."""
    columns = "SELECT size, root, at, key_label, signature, signer FROM audit_checkpoints"
    rows = (db.execute(f"{columns} ORDER BY size, signer") if not signer else
            db.execute(f"{columns} WHERE signer IN ('', ?) ORDER BY size, signer", (signer,)))
    return [Checkpoint(int(s), bytes(r), str(a), str(k), bytes(g), str(w))
            for s, r, a, k, g, w in rows]


def station_checkpoints(db: Backend, hsm: Hsm, peers: Peers,
                        trust: Trust | None = None) -> list[Checkpoint]:
    """This station's checkpoints: the rows it made (``signer``), and the rows made before
    migration 10 (signer '') except those another station's certified log key signed (a
    shared registry's older rows are every station's, unmarked: another's would read as a
    forgery of this one's). A row nobody's key signs stays in, and fails its check."""
    found = checkpoints(db, peers.station_id)
    legacy = [c for c in found if not c.signer]
    if not peers.station_id or not legacy:
        return found
    check = verifier(db, hsm)
    others = [k.public for k in (trust or trust_for(db, hsm, peers)).keys.values()
              if k.station_id != peers.station_id]
    theirs = {id(c) for c in legacy
              if not check.ok(c) and any(check.ok_under(c, key) for key in others)}
    return [c for c in found if id(c) not in theirs]


def guarded(found: list[Checkpoint], signer: str) -> list[Checkpoint]:
    """The checkpoints an anchor may be: the ones ``signer`` made since migration 10, all
    through ``checkpoint_guard`` (a proven root). Rows made before (signer '') may have
    been signed over a stored root nobody checked (before issue 14's guard): their roots
    are still checked, but entries below them are not taken as proven by them. Without a
    station id (a log one token writes, tests): every row."""
    return [c for c in found if c.signer == signer] if signer else found


def latest(db: Backend, signer: str | None = None) -> Checkpoint | None:
    found = checkpoints(db, signer)
    return found[-1] if found else None


@dataclass(frozen=True)
class Verifier:
    """Checks checkpoint signatures of one log with the token's public keys."""

    origin: str
    note_keys: dict[str, bytes]  # Ed25519 key label -> 32-byte public key
    rsa_certificates: dict[str, x509.Certificate]  # legacy signer label -> certificate

    def signed_note(self, checkpoint: Checkpoint) -> note.SignedNote:
        public = self.note_keys.get(checkpoint.key_label, b"")
        return note.SignedNote(checkpoint.note_text(self.origin), (note.Signature(
            self.origin, note.key_id(self.origin, public), checkpoint.signature),))

    def ok(self, checkpoint: Checkpoint) -> bool:
        if checkpoint.key_label in self.note_keys:
            return self.signed_note(checkpoint).verified_by(
                self.origin, self.note_keys[checkpoint.key_label])
        cert = self.rsa_certificates.get(checkpoint.key_label)
        key = cert.public_key() if cert else None
        if not isinstance(key, rsa.RSAPublicKey):
            return False
        try:
            key.verify(checkpoint.signature, checkpoint.legacy_note(), padding.PKCS1v15(),
                       hashes.SHA256())
        except InvalidSignature:
            return False
        return True

    def ok_under(self, checkpoint: Checkpoint, public: bytes) -> bool:
        """Whether ``checkpoint`` is a note of this log signed by the Ed25519 ``public``."""
        signed = note.SignedNote(checkpoint.note_text(self.origin), (note.Signature(
            self.origin, note.key_id(self.origin, public), checkpoint.signature),))
        return signed.verified_by(self.origin, public)

    def note_ok(self, signed: note.SignedNote) -> bool:
        """A note from the checkpoint file, signed by one of this token's note keys."""
        return any(signed.verified_by(self.origin, key) for key in self.note_keys.values())


def verifier(db: Backend, hsm: Hsm) -> Verifier:
    keys = {label_for(KeyRole.AUDIT_NOTE_SIGNER, v): k
            for v, k in eddsa.public_keys(hsm, KeyRole.AUDIT_NOTE_SIGNER).items()}
    legacy = {label_for(KeyRole.AUDIT_SIGNER, v): c for v, c in
              certificates_by_version(hsm, KeyRole.AUDIT_SIGNER).items()}
    return Verifier(anchors.origin(db), keys, legacy)


def make_checkpoint(registry: Registry, hsm: Hsm, checkpoints_file: Path,
                    peers: Peers | None = None) -> Checkpoint:
    """Sign (size, root, time) of the log as it is now, and keep it in the database (as
    ``peers.station_id``'s), the token head and the checkpoint file; the log unchanged
    since this station's last checkpoint gives that one back. The root signed is proven,
    not read (``checkpoint_guard``): the entries since the last checkpoint must carry
    valid MACs, or valid attestations of stations ``peers`` trusts."""
    peers = peers or Peers()
    version = current_version(hsm, KeyRole.AUDIT_NOTE_SIGNER)
    label = label_for(KeyRole.AUDIT_NOTE_SIGNER, version)
    public = eddsa.public_keys(hsm, KeyRole.AUDIT_NOTE_SIGNER)[version]
    with registry.transaction() as db:
        size = log.size(db)
        previous = next(reversed(guarded(checkpoints(db, peers.station_id),
                                         peers.station_id)), None)
        if previous is not None:  # before it is given back: a row inserted in SQL at the
            require_signed(db, hsm, previous)  # log's size would otherwise be "signed"
        if previous is not None and previous.size == size:
            return previous
        root = proven_root(db, hsm, (previous.size, previous.root) if previous else None, size,
                           trust_for(db, hsm, peers))
        origin = anchors.origin(db)
        at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        unsigned = Checkpoint(size, root, at, label, b"")
        text = unsigned.note_text(origin)
        signature = eddsa.sign(hsm, KeyRole.AUDIT_NOTE_SIGNER, version, text.encode("utf-8"))
        db.execute("INSERT INTO audit_checkpoints (size, root, at, key_label, signature, "
                   "signer) VALUES (?, ?, ?, ?, ?, ?)",
                   (size, unsigned.root, at, label, signature, peers.station_id))
        anchors.write_head(hsm, db, size, unsigned.root)
    # after the commit: the file never holds a checkpoint the database could lack
    anchors.append_note(checkpoints_file, note.SignedNote(text, (note.Signature(
        origin, note.key_id(origin, public), signature),)))
    return Checkpoint(size, unsigned.root, at, label, signature, peers.station_id)


def require_signed(db: Backend, hsm: Hsm, *found: Checkpoint) -> None:
    """Raise ``LogTamperedError`` unless every checkpoint's signature verifies: nothing is
    proven against a checkpoint the token did not sign."""
    check = verifier(db, hsm)
    for checkpoint in found:
        if not check.ok(checkpoint):
            raise LogTamperedError(f"the checkpoint of size {checkpoint.size} is not signed by "
                                   "this token's checkpoint key (forged or altered): nothing "
                                   "was proven against it")
