"""The tracking tests run in every mode: embedded (the tracker opens the stores), and remote
(a ``RemoteTracker`` talks to a real ``conveyor server`` that opens them). With the
``store_url`` parameter that makes embedded-over-SQLite, embedded-over-PostgreSQL,
remote-over-SQLite (local artifacts) and remote-over-PostgreSQL+S3 (moto's S3 server).

Tests that reach into the stores themselves (a database proxy, SQL, the spool's files of
embedded mode) ask for ``embedded_only``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.remote import mode_project, remote_tracker, serve


@pytest.fixture(params=["embedded", "remote"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def embedded_only(mode: str) -> None:
    if mode != "embedded":
        pytest.skip("reaches into the stores directly (embedded mode only)")


def _server_blobs(request: pytest.FixtureRequest, store_url: str, tmp_path: Path) -> Any:
    from conveyor.blobs import BlobStore

    if store_url.startswith("postgresql"):  # the team setup: PostgreSQL + S3
        endpoint = request.getfixturevalue("s3_server")
        bucket = request.getfixturevalue("s3_bucket_url")
        opened = BlobStore.open(f"{bucket}/artifacts", s3_endpoint_url=endpoint)
    else:
        opened = BlobStore.open(tmp_path / "server-artifacts")
    opened.init()
    return opened


@pytest.fixture
def tracker(mode: str, store: Any, request: pytest.FixtureRequest, store_url: str, tmp_path: Path) -> Iterator[Any]:
    """A tracker over the parametrized stores: embedded, or remote through a live server."""
    from conveyor.blobs import BlobStore
    from conveyor.settings import TrackingSettings
    from conveyor.tracking import Tracker

    if mode == "embedded":
        blobs = BlobStore.open(tmp_path / "artifacts")
        blobs.init()
        opened = Tracker(store, blobs, TrackingSettings(flush_interval=0.05, capture_packages=True))
        yield opened
        opened.close()
        return
    behind = Tracker(store, _server_blobs(request, store_url, tmp_path), TrackingSettings())
    with serve(behind) as server:
        client = remote_tracker(server.url, tmp_path / "spool")
        client.server_tracker = behind  # what tests may inspect on the server's side
        yield client
        client.close()
    behind.flush()


@pytest.fixture
def project(mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh project folder as the working directory (fixtures.remote.mode_project)."""
    yield from mode_project(mode, tmp_path, monkeypatch)
