"""Two stations on one provision log (issue 14): this station (the rig's token) proves
another station's entries by that station's signed attestations under a key the station
CA certified, signs checkpoints over them and verifies the log; and every way around it
fails: an edited foreign entry, a deleted or forged attestation, a key the database
vouches for but no station CA does, a station signing entries that name another one,
a foreign "attestation" laid over this station's own edited entries.

The other station is software here (an Ed25519 key and a station CA made with
``cryptography``): one process holds one SoftHSM configuration. The CLI tier runs two
real tokens against the real server (tests/integration/test_shared_log_stations.py)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from tools.audit import attestations, log, merkle, note
from tools.audit.attestations import Peers
from tools.audit.checkpoints import latest, make_checkpoint
from tools.audit.provision import Release, record
from tools.audit.verify import verify_log
from tools.errors import LogTamperedError
from tools.registry import Registry, log_signers

from ..unit.test_log_signer_certs import software_ca
from .test_verify_anchored_token import WORKERS, edit_and_rebuild

OWN = "station-t"
OTHER = "station-b"
RELEASE = Release(OWN, "Asia/Tokyo", "op-1", "NENKIN", "B1-57")


def _log_cert(ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate], station_id: str,
              public: ed25519.Ed25519PublicKey) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "juki_station_b"),
                         x509.NameAttribute(NameOID.USER_ID, station_id)])
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(ca[1].subject)
            .public_key(public).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.ExtendedKeyUsage([log_signers.LOG_SIGNING_EKU]), critical=False)
            .sign(ca[0], hashes.SHA256()))


class SoftStation:
    """Another station: its entries carry a MAC of a token this station does not have,
    and its attestations the signature of its log key."""

    def __init__(self, station_id: str = OTHER) -> None:
        self.station_id, self.key = station_id, ed25519.Ed25519PrivateKey.generate()
        self.raw = self.key.public_key().public_bytes_raw()

    def attest(self, db: Any, start: int, end: int, subtree_root: bytes) -> None:
        signature = self.key.sign(attestations.message(self.station_id, start, end,
                                                       subtree_root))
        db.execute("INSERT INTO log_attestations VALUES (?, ?, ?, ?, ?)",
                   (start, end, self.station_id, log_signers.key_id(self.raw), signature))

    def fields(self, n: int, named: str | None = None) -> dict[str, object]:
        return {"station": named or self.station_id, "resident_id": 1, "n": n}

    def append(self, registry: Registry, count: int = 1, named: str | None = None) -> None:
        with registry.transaction() as db:
            if named and db.dialect == "postgresql":  # migration 10 refuses it: the
                db.execute("SET LOCAL session_replication_role = replica")  # owner, triggers off
            for n in range(count):
                log.append(db, self.fields(n, named), "provision", 1, lambda _: b"\x5a" * 16,
                           1, self)

    def group(self, registry: Registry, count: int) -> None:
        with registry.transaction() as db:
            log.append_batch(db, [(self.fields(n), "provision", 1) for n in range(count)],
                             lambda _: b"\x5a" * 16, 1, self)


@pytest.fixture
def shared(registry: Registry) -> tuple[Registry, SoftStation, Peers]:
    """The station CA certifies the other station's log key; this station holds the CA
    certificate (its anchor, outside the database)."""
    other, ca = SoftStation(), software_ca()
    with registry.transaction() as db:
        log_signers.store(db, OTHER, _log_cert(ca, OTHER, other.key.public_key()))
    return registry, other, Peers(OWN, (ca[1],))


def _fill(registry: Registry, station, other: SoftStation) -> None:  # type: ignore[no-untyped-def]
    record(registry, station.hsm, RELEASE, kind="provision", fields=["name"], resident_id=1,
           record_code=None, card_serial=None)
    other.append(registry, 2)
    other.group(registry, 3)
    record(registry, station.hsm, RELEASE, kind="provision", fields=["name"], resident_id=2,
           record_code=None, card_serial=None)


def test_another_stations_entries_are_proven_by_its_certified_signatures(
        shared, station, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    registry, other, peers = shared
    notes = tmp_path / "checkpoints"
    _fill(registry, station, other)  # 0 own, 1-2 other, 3-5 other's batch, 6 own
    first = make_checkpoint(registry, station.hsm, notes, peers)
    assert first.size == 7
    _fill(registry, station, other)  # a tail of both again
    for options in ({}, WORKERS):
        verdict = verify_log(registry.connection(), station.hsm, notes, peers, **options)
        assert verdict.ok and verdict.size == 14, verdict.problem
    assert make_checkpoint(registry, station.hsm, notes, peers).size == 14
    rows = registry.connection().execute("SELECT signer, size FROM audit_checkpoints "
                                         "ORDER BY size").fetchall()
    assert [tuple(r) for r in rows] == [(OWN, 7), (OWN, 14)]


def test_without_the_station_ca_no_foreign_entry_is_signed(shared, station,
                                                            tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The database's log_signers row alone is no trust: the anchor is outside it."""
    registry, other, _ = shared
    _fill(registry, station, other)
    with pytest.raises(LogTamperedError, match="no station CA certificate this station trusts"):
        make_checkpoint(registry, station.hsm, tmp_path / "c", Peers(OWN))
    assert latest(registry.connection()) is None


def _refused(registry: Registry, station, peers: Peers, notes: Path, index: int, says: str,  # type: ignore[no-untyped-def]
             verify_says: str | None = None) -> None:
    """No checkpoint is signed (``says``); `audit verify` names ``index``."""
    with pytest.raises(LogTamperedError, match=says):
        make_checkpoint(registry, station.hsm, notes, peers)
    for options in ({}, WORKERS):
        verdict = verify_log(registry.connection(), station.hsm, notes, peers, **options)
        assert not verdict.ok and verdict.first_bad_index == index, verdict.problem
        assert (verify_says or says) in (verdict.problem or "")


def test_an_edited_foreign_entry_is_refused(shared, station, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    registry, other, peers = shared
    notes = tmp_path / "checkpoints"
    _fill(registry, station, other)
    make_checkpoint(registry, station.hsm, notes, peers)
    _fill(registry, station, other)  # 7 own, 8-9 other, 10-12 batch, 13 own
    edit_and_rebuild(registry, 11)
    _refused(registry, station, peers, notes, 10,
             "entries 10..12: the signature of station 'station-b' does not verify")


def _tamper(registry: Registry, sql: str, params: tuple[object, ...] = ()) -> None:
    with registry.transaction() as db:
        if db.dialect == "postgresql":
            db.execute("SET LOCAL session_replication_role = replica")
        db.execute(sql, params)


def test_a_deleted_attestation_leaves_the_entries_unproven(shared, station, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    registry, other, peers = shared
    _fill(registry, station, other)
    _tamper(registry, "DELETE FROM log_attestations WHERE start_idx = 2")
    _refused(registry, station, peers, tmp_path / "c", 2, "entry 2: MAC does not verify")


def test_a_forged_attestation_is_refused(shared, station, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    registry, other, peers = shared
    _fill(registry, station, other)
    _tamper(registry, "UPDATE log_attestations SET signature = ? WHERE start_idx = 3",
            (bytes(64),))
    _refused(registry, station, peers, tmp_path / "c", 3, "entries 3..5: the signature")


def test_a_key_only_the_database_vouches_for_is_not_trusted(shared, station,
                                                             tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The attacker's own CA certifies the attacker's key as station-b's, in log_signers;
    the entry it signs names station-b."""
    registry, _, peers = shared
    forger, rogue_ca = SoftStation(), software_ca()  # the same name, another key
    with registry.transaction() as db:
        log_signers.store(db, OTHER, _log_cert(rogue_ca, OTHER, forger.key.public_key()))
    record(registry, station.hsm, RELEASE, kind="provision", fields=["name"], resident_id=1,
           record_code=None, card_serial=None)
    forger.append(registry)
    _refused(registry, station, peers, tmp_path / "c", 1,
             "which no station CA certificate this station trusts vouches for")


def test_a_station_signing_entries_that_name_another_is_refused(shared, station,
                                                                 tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    registry, other, peers = shared
    record(registry, station.hsm, RELEASE, kind="provision", fields=["name"], resident_id=1,
           record_code=None, card_serial=None)
    if registry.connection().dialect == "postgresql":  # the registry itself refuses it
        with pytest.raises(Exception, match="name that station"), \
                registry.transaction() as db:
            log.append(db, other.fields(0, OWN), "provision", 1, lambda _: b"\x5a" * 16, 1, other)
    other.append(registry, 1, named=OWN)  # station-b's key, an entry saying station-t
    _refused(registry, station, peers, tmp_path / "c", 1,
             "entry 1 names station 'station-t', but station 'station-b' signed it")


def test_a_foreign_attestation_laid_over_own_entries_does_not_excuse_them(
        shared, station, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Own entry 6 edited, and its attestation made to name another station's key (so no
    MAC of this token is asked): the attestation itself must hold, and does not."""
    registry, other, peers = shared
    _fill(registry, station, other)
    edit_and_rebuild(registry, 6)
    _tamper(registry, "UPDATE log_attestations SET station_id = ?, key_id = ?, signature = ? "
                      "WHERE start_idx = 6", (OTHER, log_signers.key_id(other.raw), bytes(64)))
    _refused(registry, station, peers, tmp_path / "c", 6, "entries 6..6: the signature",
             "the root at size 7 differs from the token's head")  # verify: the head first


def test_another_stations_checkpoints_are_not_this_stations_anchor(shared, station,
                                                                   tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Station B's checkpoint row (signed by B) is B's: this station neither relies on it
    nor takes it for a forgery of its own."""
    registry, other, peers = shared
    notes = tmp_path / "checkpoints"
    _fill(registry, station, other)
    db = registry.connection()
    size, root = log.size(db), log.root(db, log.size(db))
    body = note.body("juki.example/other", size, root, ("t",))
    with registry.transaction() as tx:
        tx.execute("INSERT INTO audit_checkpoints (size, root, at, key_label, signature, signer) "
                   "VALUES (?, ?, 't', 'b-key', ?, ?)",
                   (size, root, other.key.sign(body.encode()), OTHER))
    mine = make_checkpoint(registry, station.hsm, notes, peers)
    assert mine.size == size and latest(registry.connection(), OWN) == mine
    verdict = verify_log(registry.connection(), station.hsm, notes, peers)
    assert verdict.ok and verdict.checkpoints == 1, verdict.problem


def test_an_attestation_is_never_a_checkpoint_note() -> None:
    text = attestations.message(OTHER, 0, 1, merkle.leaf_hash(b"x")).decode()
    assert text.splitlines()[0] == "juki-log-append"
    with pytest.raises(ValueError):
        attestations.message("two\nlines", 0, 1, bytes(32))
    assert json.dumps(text)  # one text, four lines
    assert len(text.splitlines()) == 4


def test_a_checkpoint_from_before_migration_10_is_no_anchor(registry: Registry, station,
                                                            tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A row made before migration 10 (signer '') may have been signed over a stored root
    nobody checked (before issue 14's guard): say, an edited entry laundered that way.
    Its root is still checked, but the entries below it are proven by their MACs."""
    from hsm import eddsa
    from hsm.keys import current_version
    from hsm.roles import KeyRole, label_for
    from tools.audit import anchors

    notes, peers = tmp_path / "checkpoints", Peers(OWN)
    for i in range(4):
        record(registry, station.hsm, RELEASE, kind="provision", fields=["name"], resident_id=i,
               record_code=None, card_serial=None)
    edit_and_rebuild(registry, 2)
    db = registry.connection()  # the old, unguarded checkpoint: whatever the nodes said
    size, root = log.size(db), log.root(db, 4)
    version = current_version(station.hsm, KeyRole.AUDIT_NOTE_SIGNER)
    text = note.body(anchors.origin(db), size, root, ("t",))
    with registry.transaction() as tx:
        tx.execute("INSERT INTO audit_checkpoints (size, root, at, key_label, signature) "
                   "VALUES (?, ?, 't', ?, ?)",
                   (size, root, label_for(KeyRole.AUDIT_NOTE_SIGNER, version),
                    eddsa.sign(station.hsm, KeyRole.AUDIT_NOTE_SIGNER, version, text.encode())))
        anchors.write_head(station.hsm, tx, size, root)
    assert verify_log(registry.connection(), station.hsm, notes).ok  # anchored on it: blind
    verdict = verify_log(registry.connection(), station.hsm, notes, peers)
    assert not verdict.ok and verdict.first_bad_index == 2, verdict.problem
    with pytest.raises(LogTamperedError, match="entry 2: MAC does not verify"):
        make_checkpoint(registry, station.hsm, notes, peers)


@pytest.mark.parametrize("whose", ["own", "forged foreign"])
def test_an_attestation_reaching_past_the_log_excuses_nothing(shared, station, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                              whose: str) -> None:
    """(Security review.) An attestation row ending past the log's end was skipped as "not
    reached" while its range still excused entries from this token's MACs: an own entry
    edited, or an entry forged in another station's name, was signed."""
    registry, other, peers = shared
    notes, far = tmp_path / "checkpoints", 1 << 40
    _fill(registry, station, other)
    make_checkpoint(registry, station.hsm, notes, peers)  # 7
    record(registry, station.hsm, RELEASE, kind="provision", fields=["name"], resident_id=1,
           record_code=None, card_serial=None)  # 7
    if whose == "own":
        edit_and_rebuild(registry, 7)
        _tamper(registry, "UPDATE log_attestations SET end_idx = ?, station_id = ?, key_id = ? "
                          "WHERE start_idx = 7", (far, OTHER, log_signers.key_id(other.raw)))
    else:
        with registry.transaction() as db:  # no MAC of anyone's, the nodes as the code makes them
            if db.dialect == "postgresql":
                db.execute("SET LOCAL session_replication_role = replica")
            log.append(db, other.fields(0), "provision", 1, lambda _: bytes(16), 1)
        _tamper(registry, "INSERT INTO log_attestations VALUES (8, ?, ?, ?, ?)",
                (far, OTHER, log_signers.key_id(other.raw), bytes(64)))
    index = 7 if whose == "own" else 8
    _refused(registry, station, peers, notes, index, "reaches past the log's end",
             None if whose != "own" else "the root at size 8 differs from the token's head")


def test_another_stations_checkpoint_from_before_migration_10_is_its_own(
        shared, station, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """(Security review.) Rows made before migration 10 carry no signer: on a shared
    registry another station's read as a forgery of this one's, and `audit verify` failed
    for good. One its certified key signed is its; one nobody's key signed still fails."""
    from tools.audit import anchors

    registry, other, peers = shared
    notes = tmp_path / "checkpoints"
    _fill(registry, station, other)
    db = registry.connection()

    def legacy(size: int, sign) -> None:  # type: ignore[no-untyped-def]
        root = log.root(db, size)
        text = note.body(anchors.origin(db), size, root, ("t",))
        with registry.transaction() as tx:
            tx.execute("INSERT INTO audit_checkpoints (size, root, at, key_label, signature) "
                       "VALUES (?, ?, 't', 'juki/audit-checkpoint-note-signer/v1', ?)",
                       (size, root, sign(text.encode())))

    legacy(6, other.key.sign)  # station-b's, before migration 10
    make_checkpoint(registry, station.hsm, notes, peers)
    verdict = verify_log(registry.connection(), station.hsm, notes, peers)
    assert verdict.ok and verdict.checkpoints == 1, verdict.problem
    legacy(5, lambda _text: bytes(64))  # nobody's
    verdict = verify_log(registry.connection(), station.hsm, notes, peers)
    assert not verdict.ok and "checkpoint at size 5: signature does not verify" in (
        verdict.problem or ""), verdict.problem


def test_an_attestation_beginning_before_the_log_excuses_nothing(shared, station,
                                                                  tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """(Security review.) With no anchor yet (tail 0), a row (-1, n) was taken as the one
    straddling the tail, excused entries 0..n-1 from every MAC and was never checked
    itself: a forged entry was signed. The table refuses such a row; one slipped past
    (SQLite's check constraints off) is a problem at index 0."""
    registry, other, peers = shared
    _fill(registry, station, other)
    with registry.transaction() as db:
        if db.dialect == "postgresql":
            db.execute("SET LOCAL session_replication_role = replica")
        index = log.append(db, other.fields(9), "provision", 1, lambda _: bytes(16), 1)
    row = (-1, index + 1, OTHER, log_signers.key_id(other.raw), bytes(64))
    with pytest.raises(Exception, match=r"(?i)check"):
        _tamper(registry, "INSERT INTO log_attestations VALUES (?, ?, ?, ?, ?)", row)
    if registry.connection().dialect != "sqlite":
        return  # PostgreSQL: a CHECK constraint holds for the owner too
    with registry.transaction() as db:
        db.execute("PRAGMA ignore_check_constraints = ON")
        db.execute("INSERT INTO log_attestations VALUES (?, ?, ?, ?, ?)", row)
    _refused(registry, station, peers, tmp_path / "c", 0, "begins before the log's first entry")
    with registry.transaction() as db:  # and one that covers nothing
        db.execute("PRAGMA ignore_check_constraints = ON")
        db.execute("DELETE FROM log_attestations WHERE start_idx = -1")
        db.execute("INSERT INTO log_attestations VALUES (?, ?, ?, ?, ?)",
                   (index, index, OTHER, log_signers.key_id(other.raw), bytes(64)))
    verdict = verify_log(registry.connection(), station.hsm, tmp_path / "c", peers)
    assert not verdict.ok and verdict.first_bad_index == index, verdict  # no traceback
