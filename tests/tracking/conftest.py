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

from fixtures.remote import mode_project, stores_tracker


@pytest.fixture
def tracker(mode: str, store: Any, request: pytest.FixtureRequest, store_url: str, tmp_path: Path) -> Iterator[Any]:
    """A tracker over the parametrized stores: embedded, or remote through a live server
    (over PostgreSQL the server's artifacts are on moto's S3)."""
    yield from stores_tracker(mode, store, request, store_url, tmp_path)


@pytest.fixture
def project(mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh project folder as the working directory (fixtures.remote.mode_project)."""
    yield from mode_project(mode, tmp_path, monkeypatch)
