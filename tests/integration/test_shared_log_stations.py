"""Two real stations (two SoftHSM tokens) and the registry operator write one provision
log on a real PostgreSQL in the TLS-and-roles configuration, end to end through `juki`:
each station enrolled with its log key certified by the station CA, each signs its own
checkpoints over the other's entries (and the operator's recipient-table event) and
verifies the whole log; each station's checkpoints stay its own. Then the attack: an
entry of station B edited after A's last checkpoint, its Merkle nodes rebuilt (no key
needed): A refuses to sign it and `audit verify` names it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.registry import Registry

from ..conftest import ROOT, juki
from .registry_tls_cluster import Cluster, start_cluster
from .test_registry_tls_pg import make_home
from .test_verify_anchored_token import edit_and_rebuild

OPERATOR = {"JUKI_DB": ""}  # the registry operator's commands open no station registry


@pytest.fixture(scope="module")
def ca_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("shared-ca-home")


@pytest.fixture(scope="module")
def cluster(ca_home: Path) -> Iterator[Cluster]:
    """A cluster of this module's own: the last test leaves its log broken."""
    running = start_cluster(ca_home, juki)
    yield running
    running.stop()


def _enrol(home: Path, cluster: Cluster, ca_home: Path) -> Path:
    asked = json.loads(juki(home, "station", "enroll-registry", "--json").stdout)
    bundle = home / "issued.pem"
    juki(home, "registry", "issue-station", asked["csr"], "--ca-home", str(ca_home),
         "--admin-db", cluster.owner_url(), "--out", str(bundle), "--json", env=OPERATOR)
    juki(home, "station", "enroll-registry", "--install", str(bundle), "--json")
    juki(home, "hsm", "init")  # its key-created events: this station's entries
    return home


@pytest.fixture(scope="module")
def stations(cluster: Cluster, ca_home: Path,
             tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    a = _enrol(make_home(tmp_path_factory.mktemp("st-a"), "shared-a", cluster.station_url()),
               cluster, ca_home)
    b = _enrol(make_home(tmp_path_factory.mktemp("st-b"), "shared-b", cluster.station_url()),
               cluster, ca_home)
    juki(ca_home, "hsm", "init", env=OPERATOR)
    juki(ca_home, "registry", "recipients", "--load", str(ROOT / "fixtures" / "recipients.toml"),
         "--admin-db", cluster.owner_url(), "--ca-home", str(ca_home), "--json", env=OPERATOR)
    return a, b


def _stations_of_log(cluster: Cluster) -> list[str]:
    registry = Registry(cluster.superuser_url())
    try:
        return [str(r[0]) for r in registry.connection().execute(
            "SELECT entry::jsonb ->> 'station' FROM provision_log ORDER BY idx")]
    finally:
        registry.close()


def test_each_station_signs_and_verifies_a_log_the_others_wrote_too(
        stations: tuple[Path, Path], cluster: Cluster) -> None:
    a, b = stations
    writers = _stations_of_log(cluster)
    assert {"shared-a", "shared-b"} <= set(writers) and len(set(writers)) == 3, set(writers)
    for home in (a, b, a):
        checkpoint = json.loads(juki(home, "audit", "checkpoint", "--json").stdout)
        assert checkpoint["size"] == len(writers)
        verdict = json.loads(juki(home, "audit", "verify", "--json").stdout)
        assert verdict["ok"] and verdict["size"] == len(writers), verdict
    listed = json.loads(juki(b, "audit", "events", "--proof", "--json").stdout)
    assert listed["checkpoint"]["signature_ok"] is True
    assert {e["station"] for e in listed["events"]} == set(writers)
    registry = Registry(cluster.superuser_url())
    try:
        signers = {str(r[0]) for r in registry.connection().execute(
            "SELECT signer FROM audit_checkpoints")}
        trusted = {str(r[0]) for r in registry.connection().execute(
            "SELECT station_id FROM log_signers")}
    finally:
        registry.close()
    assert signers == {"shared-a", "shared-b"} and {"shared-a", "shared-b"} <= trusted


def test_the_log_key_the_enrolment_made_has_its_key_created_event(
        stations: tuple[Path, Path]) -> None:
    """`enroll-registry` makes the note key before the station can reach its registry;
    its 操作履歴 event is recorded once, by the `hsm init` that follows."""
    a, _ = stations
    listed = json.loads(juki(a, "audit", "events", "--event", "key-created", "--json").stdout)
    notes = [e for e in listed["events"]
             if e["detail"]["role"] == "audit-checkpoint-note-signer" and e["station"] == "shared-a"]
    assert [(e["reason"], e["detail"]["version"]) for e in notes] == [("enroll-registry", 1)]
    enrolment = json.loads((a / "registry-tls" / "enrolment.json").read_text())
    assert "log_key_created_unrecorded" not in enrolment


def test_an_edited_entry_of_another_station_is_never_signed(
        stations: tuple[Path, Path], cluster: Cluster, ca_home: Path,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """Last in this module: it leaves the log broken. A signs a checkpoint; station C
    joins and writes its entries; one of them is edited."""
    a, _ = stations
    juki(a, "audit", "checkpoint")
    _enrol(make_home(tmp_path_factory.mktemp("st-c"), "shared-c", cluster.station_url()),
           cluster, ca_home)
    writers = _stations_of_log(cluster)
    victim = max(i for i, s in enumerate(writers) if s == "shared-c")
    registry = Registry(cluster.superuser_url())
    try:
        edit_and_rebuild(registry, victim)
    finally:
        registry.close()
    refused = juki(a, "audit", "checkpoint", check=None)
    assert refused.returncode != 0 and "no checkpoint was signed" in refused.stderr
    assert "of station 'shared-c' does not verify" in refused.stderr, refused.stderr
    verdict = json.loads(juki(a, "audit", "verify", "--json", check=1).stdout)
    assert not verdict["ok"] and "of station 'shared-c' does not verify" in verdict["problem"]
