"""Review attacks on stations proving each other's provision-log entries (issue 14):
crafted ``log_attestations`` and ``log_signers`` rows, checkpoints of other stations,
and what a station role may do on PostgreSQL. Each test here is an attack that FAILED
(the guard refuses to sign, `audit verify` names the entry, the key is not trusted, the
database refuses the row). The attacks that succeeded are in the review report.

The other station is software (``SoftStation`` of test_shared_log_trust); this station
is the rig's token."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hsm import eddsa
from hsm.roles import KeyRole
from tools.audit import log
from tools.audit.attestations import Peers
from tools.audit.checkpoints import make_checkpoint
from tools.audit.provision import record
from tools.registry import Registry, log_signers

from ..unit.test_log_signer_certs import software_ca
from .test_shared_log_trust import (
    OTHER,
    OWN,
    RELEASE,
    SoftStation,
    _fill,
    _log_cert,
    _refused,
    _tamper,
)
from .test_verify_anchored_token import edit_and_rebuild


@pytest.fixture
def shared(registry: Registry) -> tuple[Registry, SoftStation, Peers]:
    """As test_shared_log_trust's: station-b's log key certified by the station CA this
    station holds (its anchor, outside the database)."""
    other, ca = SoftStation(), software_ca()
    with registry.transaction() as db:
        log_signers.store(db, OTHER, _log_cert(ca, OTHER, other.key.public_key()))
    return registry, other, Peers(OWN, (ca[1],))


def _own(registry: Registry, station, resident: int = 1) -> None:  # type: ignore[no-untyped-def]
    record(registry, station.hsm, RELEASE, kind="provision", fields=["name"],
           resident_id=resident, record_code=None, card_serial=None)


def test_a_foreign_named_attestation_under_this_tokens_key_id_excuses_nothing(
        shared, station, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Own entry 6 edited; its attestation row made to name station-b but keep this
    token's key id: "own key" wins, the MAC is asked, and it fails."""
    registry, other, peers = shared
    _fill(registry, station, other)
    edit_and_rebuild(registry, 6)
    _tamper(registry, "UPDATE log_attestations SET station_id = ? WHERE start_idx = 6", (OTHER,))
    with pytest.raises(Exception, match="entry 6: MAC does not verify"):
        make_checkpoint(registry, station.hsm, tmp_path / "c", peers)


def test_an_untrusted_overlapping_attestation_within_the_log_is_refused(
        shared, station, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A second, overlapping attestation (no trigger on SQLite; owner with triggers off
    on PostgreSQL) over an edited own entry, ending inside the log: named at its start."""
    registry, other, peers = shared
    _fill(registry, station, other)  # 0 own, 1-2 other, 3-5 other's batch, 6 own
    edit_and_rebuild(registry, 6)
    _tamper(registry, "INSERT INTO log_attestations VALUES (?, ?, ?, ?, ?)",
            (4, 7, OTHER, log_signers.key_id(other.raw), bytes(64)))
    _refused(registry, station, peers, tmp_path / "c", 4, "entries 4..6: the signature")


def test_a_valid_foreign_signature_moved_to_another_index_is_refused(
        shared, station, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """station-b's entry 1 and its attestation copied to index 7 (entry re-indexed, Merkle
    nodes rebuilt): the index is in the leaf and in the signed text."""
    registry, other, peers = shared
    _fill(registry, station, other)
    with registry.transaction() as db:
        raw = db.execute("SELECT entry FROM provision_log WHERE idx = 1").fetchone()[0]
    forged = json.loads(raw)
    forged.pop("index"), forged.pop("kind")
    with registry.transaction() as db:
        if db.dialect == "postgresql":
            db.execute("SET LOCAL session_replication_role = replica")
        log.append(db, forged, "provision", 1, lambda _: b"\x5a" * 16, 1)
        sig = db.execute("SELECT signature, key_id FROM log_attestations WHERE start_idx = 1"
                         ).fetchone()
        db.execute("INSERT INTO log_attestations VALUES (7, 8, ?, ?, ?)",
                   (OTHER, str(sig[1]), bytes(sig[0])))
    _refused(registry, station, peers, tmp_path / "c", 7, "entries 7..7: the signature")


def _cert(ca, subject: x509.Name, public, *, eku=None, is_ca: bool = False,  # type: ignore[no-untyped-def]
          days: int = 30) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca[1].subject)
               .public_key(public).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(days=1))
               .not_valid_after(now + dt.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None),
                              critical=True))
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    return builder.sign(ca[0], hashes.SHA256())


def _name(uid: str | None) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "juki_station_b"),
                      *([x509.NameAttribute(NameOID.USER_ID, uid)] if uid else [])])


def _row(db, station_id: str, kid: str, cert: x509.Certificate) -> None:  # type: ignore[no-untyped-def]
    db.execute("INSERT INTO log_signers VALUES (?, ?, ?)",
               (station_id, kid, cert.public_bytes(serialization.Encoding.DER)))


def test_no_log_signers_row_is_trusted_without_the_anchors_signature_and_purpose(
        tmp_path: Path) -> None:
    """What the database owner can put in log_signers: the anchor's name on another key,
    no EKU, the TLS EKU, a CA certificate, another station's UID, no UID, an EC key, a
    key id that is not the key's, a chain through an intermediate the real CA signed."""
    ca, rogue = software_ca("Station CA"), software_ca("Station CA")
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    raw = key.public_bytes_raw()
    kid = log_signers.key_id(raw)
    ec_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    # an intermediate the real CA signed (is_ca), issuing a log signer for station-b
    inter_key = ec.generate_private_key(ec.SECP256R1())
    inter = _cert(ca, x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "inter")]),
                  inter_key.public_key(), is_ca=True)
    via_inter = _cert((inter_key, inter), _name(OTHER), key, eku=[log_signers.LOG_SIGNING_EKU])
    registry = Registry(tmp_path / "r.sqlite")
    with registry.transaction() as db:
        _row(db, OTHER, kid, _log_cert(rogue, OTHER, key))  # rogue CA, same name
        _row(db, "b2", kid, _cert(ca, _name("b2"), key))  # no EKU
        _row(db, "b3", kid, _cert(ca, _name("b3"), key, eku=[ExtendedKeyUsageOID.CLIENT_AUTH]))
        _row(db, "b4", kid, inter)  # a CA certificate in log_signers
        _row(db, "b5", kid, _cert(ca, _name("other-uid"), key,
                                  eku=[log_signers.LOG_SIGNING_EKU]))  # UID not the row's
        _row(db, "b6", kid, _cert(ca, _name(None), key, eku=[log_signers.LOG_SIGNING_EKU]))
        _row(db, "b7", "ec", _cert(ca, _name("b7"), ec_key, eku=[log_signers.LOG_SIGNING_EKU]))
        _row(db, "b8", "0" * 16, _cert(ca, _name("b8"), key, eku=[log_signers.LOG_SIGNING_EKU]))
        _row(db, OTHER, "1" * 16, via_inter)  # a chain: only directly issued certificates
        _row(db, "good", kid, _cert(ca, _name("good"), key, eku=[log_signers.LOG_SIGNING_EKU]))
    trusted = log_signers.trusted(registry.connection(), [ca[1]])
    assert list(trusted) == [("good", kid)]
    assert trusted[("good", kid)].public == raw
    registry.close()


def test_a_tls_certificate_as_log_signer_is_refused_even_with_both_ekus(tmp_path: Path) -> None:
    """An EC key (a TLS key) with the log-signing EKU too is still not an Ed25519 key."""
    ca = software_ca("Station CA")
    ec_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    cert = _cert(ca, _name(OTHER), ec_key, eku=[ExtendedKeyUsageOID.CLIENT_AUTH,
                                                log_signers.LOG_SIGNING_EKU])
    with pytest.raises(ValueError, match="not Ed25519"):
        log_signers.check_certificate(cert.public_bytes(serialization.Encoding.DER), [ca[1]],
                                      OTHER)


def test_another_stations_checkpoint_row_is_never_this_stations_previous(
        shared, station, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """station-b's (validly signed by b) checkpoint at a larger size, over a log in which
    this station's entry was edited after it: this station's guard still checks its tail
    from its own last checkpoint, and refuses."""
    registry, other, peers = shared
    notes = tmp_path / "c"
    _fill(registry, station, other)
    make_checkpoint(registry, station.hsm, notes, peers)  # 7, OWN
    _own(registry, station)  # 7
    edit_and_rebuild(registry, 7)
    db = registry.connection()
    size, root = log.size(db), log.root(db, log.size(db))
    with registry.transaction() as tx:
        tx.execute("INSERT INTO audit_checkpoints (size, root, at, key_label, signature, signer) "
                   "VALUES (?, ?, 't', ?, ?, ?)",
                   (size, root, "juki/audit-checkpoint-note-signer/v1", bytes(64), OTHER))
    with pytest.raises(Exception, match="entry 7: MAC does not verify"):
        make_checkpoint(registry, station.hsm, notes, peers)


def test_own_key_ids_are_every_note_key_of_the_token(station) -> None:  # type: ignore[no-untyped-def]
    """Trust.own_key_ids (what "own attestation" means) is every version's key id."""
    from tools.audit.attestations import trust_for

    keys = eddsa.public_keys(station.hsm, KeyRole.AUDIT_NOTE_SIGNER)
    trust = trust_for(None, station.hsm, Peers())
    assert trust.own_key_ids == {log_signers.key_id(k) for k in keys.values()}
    assert trust.keys == {}
