"""The recipient table of a PostgreSQL registry with roles: a station only reads it (and
is told so, not shown a raw permission error); the registry operator's `juki registry
recipients --load` changes it with its `recipient-table-changed` event."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tools.audit import events, recipients
from tools.audit.provision import Release, load_recipients
from tools.cli.main import run
from tools.errors import PermissionDeniedError, RequestError
from tools.registry import Registry
from tools.station.home import StationHome

from .pg_station import as_station

TABLE = recipients.DEFAULT_FILE
RELEASE = Release("pg-rules-a", "Asia/Tokyo", "alice", "RECIPIENT-TABLE", "load")


@pytest.fixture
def fake_token(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The audit-entry MAC and the token head without a token (heads written: kept)."""
    heads: list[int] = []
    monkeypatch.setattr(events, "mac", lambda _h, _v, leaf, _r: hashlib.sha256(leaf).digest())
    monkeypatch.setattr(events, "current_version", lambda _hsm, _role: 1)
    monkeypatch.setattr(events.anchors, "write_head",
                        lambda _hsm, _db, size, _root: heads.append(size))
    monkeypatch.setattr(StationHome, "open_token", lambda _self: None)
    from tools.audit import attestations
    from tools.pki import log_signer_certs  # its certificate: test_log_signer_certs.py

    monkeypatch.setattr(log_signer_certs, "ensure_own_log_signer", lambda _h, _s, _db: None)
    monkeypatch.setattr(attestations, "_log_key", lambda _hsm: (1, "00" * 8))  # the append's
    monkeypatch.setattr(attestations.eddsa, "sign", lambda *_args: bytes(64))  # signature
    return heads


@pytest.fixture
def url(fresh_postgres: str) -> str:
    Registry(fresh_postgres).close()
    return fresh_postgres


@pytest.fixture
def station(url: str):  # type: ignore[no-untyped-def]
    registry = as_station(url)
    yield registry
    registry.close()


def test_a_station_only_reads_the_table(station: Registry, fake_token: list[int]) -> None:
    with pytest.raises(RequestError, match=r"table is empty.*juki registry recipients --load"):
        recipients.ensure_loaded(station, TABLE)  # the first-use auto-load: read only
    with pytest.raises(PermissionDeniedError, match=r"registry operator's.*may only read it"):
        load_recipients(station, None, RELEASE, TABLE)  # type: ignore[arg-type]
    with pytest.raises(PermissionDeniedError, match="may only read it"):
        recipients.load(station, TABLE)
    assert recipients.listed(station) == []
    assert station.connection().execute("SELECT count(*) FROM provision_log").fetchone()[0] == 0
    assert fake_token == []


def test_the_registry_operator_loads_it_with_its_event(url: str, station: Registry,
                                                       fake_token: list[int], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    operator_home = tmp_path / "registry-operator"
    StationHome(operator_home).ensure()
    (operator_home / "config.toml").write_text('[station]\nid = "registry-op"\n')
    status = run(["--home", str(tmp_path / "unused"), "registry", "recipients", "--load",
                  str(TABLE), "--admin-db", url, "--ca-home", str(operator_home), "--json"])
    out = capsys.readouterr()
    assert status == 0, out.err
    added = json.loads(out.out)["added"]
    expected = sorted(f"{r.recipient_id}/{p.code}" for r in recipients.parse_file(TABLE)
                      for p in r.purposes)
    assert added == expected and added
    recipients.ensure_loaded(station, TABLE)  # now there: the station reads it
    first = recipients.parse_file(TABLE)[0]
    assert recipients.purpose_of(station, first.recipient_id, first.purposes[0].code) == (
        first.name, first.purposes[0].description)
    (entry,) = [json.loads(r[0]) for r in station.connection().execute(
        "SELECT entry FROM provision_log")]
    assert entry["event"] == "recipient-table-changed" and entry["station"] == "registry-op"
    assert entry["operator"].startswith("os:")
    assert entry["detail"]["sha256"] == hashlib.sha256(TABLE.read_bytes()).hexdigest()
    assert fake_token == [1]


def test_the_administrative_command_refuses_a_sqlite_registry(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = run(["--home", str(tmp_path / "h"), "registry", "recipients", "--load", str(TABLE),
                  "--admin-db", str(tmp_path / "r.sqlite"), "--ca-home", str(tmp_path / "op")])
    assert status == 2 and "must be a postgresql:// URL" in capsys.readouterr().err
    assert not (tmp_path / "r.sqlite").exists()


def test_a_station_connection_cannot_use_the_administrative_command(
        url: str, station: Registry, fake_token: list[int], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The command's authority is the database connection: a station's role is refused
    (exit 7, the table untouched) even through the registry operator's command."""
    role = station.connection().execute("SELECT current_user").fetchone()[0]
    as_role = f"{url}&options=-c%20role%3D{role}"
    status = run(["--home", str(tmp_path / "h"), "registry", "recipients", "--load", str(TABLE),
                  "--admin-db", as_role, "--ca-home", str(tmp_path / "op")])
    assert status == 7 and "may only read it" in capsys.readouterr().err
    assert recipients.listed(station) == []


def test_an_operator_home_without_audit_keys_is_told_what_to_run(
        url: str, station: Registry, fake_token: list[int], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from hsm.errors import KeyNotFoundError

    def no_key(*_args):  # type: ignore[no-untyped-def]
        raise KeyNotFoundError("no audit-entry-mac key in the token (run `juki hsm init`)")

    monkeypatch.setattr(events, "current_version", no_key)
    operator_home = tmp_path / "op"
    status = run(["--home", str(tmp_path / "h"), "registry", "recipients", "--load", str(TABLE),
                  "--admin-db", url, "--ca-home", str(operator_home)])
    err = capsys.readouterr().err
    assert status != 0 and f"juki --home {operator_home} hsm init" in err
    assert recipients.listed(station) == []  # the table and its event: neither
