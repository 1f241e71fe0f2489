"""Shared fixtures. The rig (pcscd + vpcd + emulated cards + SoftHSM) is one per
machine (pcsc-lite 1.9 has one fixed socket), so one session-wide rig serves the
integration and CLI tiers. It is brought up and down through the real `juki` CLI.
Nothing here skips: without pcscd, vpcd or SoftHSM these tests fail."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RIG_SLOTS = 2


def juki(home: Path, *args: str, input: str | None = None, check: int | None = 0,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the `juki` CLI as a user would (a fresh interpreter, real argv)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PKCS11_")}
    own = _own_registry_url(home)
    if own:
        environment["JUKI_DB"] = own  # a test station with a database of its own
    result = subprocess.run(
        [sys.executable, "-m", "tools", "--home", str(home), *args],
        capture_output=True, text=True, input=input, cwd=ROOT, check=False,
        env=environment | (env or {}),
    )
    if check is not None and result.returncode != check:
        raise AssertionError(
            f"juki {' '.join(args)} exited {result.returncode} (expected {check})\n"
            f"stdout: {result.stdout}\nstderr: {result.stderr}"
        )
    return result


def _own_registry_url(home: Path) -> str | None:
    import tomllib

    try:
        settings = tomllib.loads((home / "config.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return None
    return settings.get("registry", {}).get("url")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that run their own rig go first, before the shared rig exists."""
    items.sort(key=lambda item: 0 if item.get_closest_marker("own_rig") else 1)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "own_rig: starts and stops its own rig (runs first)")


def _open_by_roots_word(home: Path) -> None:
    """``mode = "open"`` in a root-owned config: the station stays open even when the
    registry it shares (the PostgreSQL pass) has an operator-admin."""
    from tools.station.home import StationHome

    station = StationHome(home)
    settings = station.settings()
    settings.setdefault("station", {})["mode"] = "open"
    station.write_settings(settings)


# The PostgreSQL pass of `make test` (JUKI_DB asks for TLS): the registry is shared as in
# production (.ci/postgres-up, docs/deployment.md). A station reaches it only as its own
# role, with a client certificate whose key is in its token; the tests that read or
# tamper with the database directly do so as its owner (``direct_registry_target``).
OWNER_URL_ENV = "JUKI_REGISTRY_OWNER_URL"
CA_HOME_ENV = "JUKI_REGISTRY_CA_HOME"


def shared_tls_registry() -> str | None:
    """The suite's shared registry URL when this is the TLS pass, else None."""
    url = os.environ.get("JUKI_DB", "")
    return url if url.startswith("postgresql") and "sslmode=verify-full" in url else None


def _uses_shared_registry(home: Path) -> bool:
    return shared_tls_registry() is not None and not _own_registry_url(home)


def direct_registry_target(home: Path) -> Path | str:
    """Where a test opens the station's registry itself (to look at it or tamper with
    it): the station's own target, except the shared TLS registry, which the test process
    (no station certificate of its own) reaches as its owner over the local socket."""
    from tools.station.home import StationHome

    target = StationHome(home).registry_target()
    if shared_tls_registry() is not None and str(target) == shared_tls_registry():
        return os.environ[OWNER_URL_ENV]
    return target


def enroll_in_shared_registry(home: Path) -> None:
    """In the TLS pass, a home that uses the shared registry is enrolled as a station
    would be in production: `station enroll-registry` (key in its token, CSR), the
    registry operator's `registry issue-station`, `station enroll-registry --install`.
    Its token must exist; its other keys need not (`hsm init` already writes to the
    registry). Elsewhere (SQLite, a database of its own) nothing is done."""
    if not _uses_shared_registry(home):
        return
    import secrets

    from tools.station.home import StationHome

    station = StationHome(home)
    settings = station.settings()
    if not settings.get("station", {}).get("id"):  # the default (host:path) names no role
        settings.setdefault("station", {})["id"] = f"suite-{secrets.token_hex(4)}"
        station.write_settings(settings)
    asked = json.loads(juki(home, "station", "enroll-registry", "--json").stdout)
    operator = {"JUKI_DB": ""}  # the registry operator's commands use no station registry
    certificate = Path(asked["csr"]).with_name("issued.pem")
    juki(Path(os.environ[CA_HOME_ENV]), "registry", "issue-station", asked["csr"],
         "--ca-home", os.environ[CA_HOME_ENV], "--admin-db", os.environ[OWNER_URL_ENV],
         "--out", str(certificate), "--json", env=operator)
    juki(home, "station", "enroll-registry", "--install", str(certificate), "--json")
    ENROLLED_ROLES.append(asked["role"])


ENROLLED_ROLES: list[str] = []


@pytest.fixture(scope="session", autouse=True)
def _drop_enrolled_roles():  # type: ignore[no-untyped-def]
    """The suite's station roles are cluster-wide: dropped when the session ends."""
    yield
    if not ENROLLED_ROLES or postgres_admin_url() is None:
        return
    import psycopg

    with psycopg.connect(postgres_admin_url() or "", autocommit=True) as db:
        for role in ENROLLED_ROLES:
            with contextlib.suppress(psycopg.Error):  # still in use: left for the next run
                db.execute(f'DROP ROLE IF EXISTS "{role}"')


@pytest.fixture(scope="session")
def rig_home(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    home = tmp_path_factory.mktemp("station")
    up = json.loads(juki(home, "rig", "up", "--blank", str(RIG_SLOTS), "--json").stdout)
    assert up["pcscd"]["running"] and len(up["cards"]) == RIG_SLOTS
    try:
        _open_by_roots_word(home)  # the tests use the rig's home as a station too
        enroll_in_shared_registry(home)  # before hsm init, which records its keys' events there
        juki(home, "hsm", "init")
    except BaseException:
        juki(home, "rig", "down", check=None)  # no rig left running by a failed set-up
        raise
    started = {up["pcscd"]["pid"], *(c["pid"] for c in up["cards"])}
    yield home
    status = json.loads(juki(home, "rig", "status", "--json", check=None).stdout)
    current = {status["pcscd"]["pid"], *(c["pid"] for c in status["cards"])}
    down = json.loads(juki(home, "rig", "down", "--json").stdout)
    assert set(down["stopped_pids"]) == current
    for pid in started | current:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


@pytest.fixture(scope="session")
def station(rig_home: Path):  # type: ignore[no-untyped-def]
    """The shared rig's station resources, opened in this process."""
    from tools.service.context import Station

    return Station(rig_home)


POSTGRES_ENV = "JUKI_TEST_POSTGRES"


def postgres_admin_url() -> str | None:
    """A PostgreSQL URL the tests may create databases with. In CI it must be set:
    the registry tests run on both backends there, never skipped."""
    url = os.environ.get(POSTGRES_ENV)
    if not url and os.environ.get("CI") == "true":
        raise RuntimeError(f"{POSTGRES_ENV} is not set: .ci/run must start PostgreSQL")
    return url


def create_database(prefix: str) -> str:
    """A new, empty PostgreSQL database; its URL. Needs JUKI_TEST_POSTGRES."""
    import secrets

    import psycopg

    admin = postgres_admin_url()
    if admin is None:
        raise RuntimeError(f"{POSTGRES_ENV} must be set to create test databases")
    name = f"{prefix}_{secrets.token_hex(6)}"
    with psycopg.connect(admin, autocommit=True) as db:
        db.execute(f"CREATE DATABASE {name}")
    CREATED_DATABASES.append(name)
    base, _, query = admin.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")


def drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(postgres_admin_url() or "", autocommit=True) as db:
        db.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


CREATED_DATABASES: list[str] = []


@pytest.fixture(scope="session", autouse=True)
def _drop_created_databases():  # type: ignore[no-untyped-def]
    yield
    for name in CREATED_DATABASES:
        drop_database(name)


@pytest.fixture
def fresh_postgres():  # type: ignore[no-untyped-def]
    """A new, empty PostgreSQL database for one test; dropped afterwards."""
    if postgres_admin_url() is None:
        pytest.skip(f"{POSTGRES_ENV} not set (outside CI)")
    url = create_database("juki_t")
    yield url
    name = CREATED_DATABASES.pop()
    drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def registry(request, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A fresh registry on each backend: every rule is checked on SQLite and on
    PostgreSQL (JUKI_TEST_POSTGRES; in CI it must be set)."""
    from tools.registry import Registry

    target = (tmp_path / "registry.sqlite" if request.param == "sqlite"
              else request.getfixturevalue("fresh_postgres"))
    registry = Registry(target)
    yield registry
    registry.close()
