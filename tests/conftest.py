"""Shared fixtures: real stores (SQLite file and PostgreSQL), artifact stores (local and
moto's S3 server), a tracker, and a throw-away project folder.

Services that are missing make their tests skip with the reason, except with
``CONVEYOR_REQUIRE_SERVICES=1`` (CI), where they fail.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from fixtures.s3 import s3_bucket_url, s3_server  # noqa: E402,F401  (fixtures)

PG_ADMIN_URL = os.environ.get("CONVEYOR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def unavailable(service: str, reason: str) -> None:
    """Skip (a developer without the service) or fail (CI, CONVEYOR_REQUIRE_SERVICES=1)."""
    if os.environ.get("CONVEYOR_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{service} is required (CONVEYOR_REQUIRE_SERVICES=1) but {reason}")
    pytest.skip(f"{service} unavailable: {reason}")


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[str]:
    """A connection string of the PostgreSQL server where per-test databases are made."""
    try:
        import psycopg
    except ImportError as exc:
        unavailable("PostgreSQL", f"psycopg is not installed ({exc})")
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # any failure to connect means "no service"
        unavailable("PostgreSQL", f"cannot connect to {PG_ADMIN_URL}: {exc}")
    yield PG_ADMIN_URL


@pytest.fixture
def postgres_url(postgres_admin: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    import psycopg

    name = f"conveyor_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = postgres_admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    yield f"{base}/{name}"
    with psycopg.connect(postgres_admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty metadata database: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta' / 'conveyor.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(store_url: str) -> Iterator[object]:
    from conveyor.store import Store

    opened = Store.open(store_url, create=True)
    yield opened
    opened.close()


@pytest.fixture
def blobs(tmp_path: Path) -> object:
    from conveyor.blobs import BlobStore

    opened = BlobStore.open(tmp_path / "artifacts")
    opened.init()
    return opened


@pytest.fixture
def tracker(store: object, blobs: object) -> Iterator[object]:
    """A tracker over the parametrized metadata store and a local artifact store."""
    from conveyor.settings import TrackingSettings
    from conveyor.tracking import Tracker

    opened = Tracker(store, blobs, TrackingSettings(flush_interval=0.05, capture_packages=True))  # type: ignore[arg-type]
    yield opened
    opened.close()


@pytest.fixture(params=["embedded", "remote"])
def mode(request: pytest.FixtureRequest) -> str:
    """Embedded (the client opens the stores) or remote (through a live ``conveyor server``):
    suites that run both ways build their ``tracker``/``project`` on it (fixtures.remote)."""
    return str(request.param)


@pytest.fixture
def embedded_only(mode: str) -> None:
    if mode != "embedded":
        pytest.skip("reaches into the stores directly, or passes a hook that cannot cross the wire (embedded mode only)")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh project folder (conveyor.toml, SQLite, local artifacts) as the working directory,
    with the module-level API pointed at it and no CONVEYOR_* variables leaking in."""
    from conveyor.models import set_trust
    from conveyor.tracking import set_tracker

    for key in list(os.environ):
        if key.startswith("CONVEYOR_") and key not in ("CONVEYOR_REQUIRE_SERVICES", "CONVEYOR_TEST_POSTGRES"):
            monkeypatch.delenv(key)
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "conveyor.toml").write_text("[tracking]\nflush_interval = 0.05\n", encoding="utf-8")
    monkeypatch.chdir(folder)
    set_tracker(None)
    set_trust(None)  # the CLI's --trust sets a process-wide policy; each project starts from its settings
    yield folder
    set_tracker(None)
    set_trust(None)
