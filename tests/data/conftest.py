"""Fixtures for conveyor.data: a tracker over SQLite and PostgreSQL in a scratch working
directory (the stat cache lives under its .conveyor/), and small files to version.

Every test runs in both modes: embedded (the tracker opens the stores) and remote (a
``RemoteTracker`` talks to a real ``conveyor server`` over them: SQLite with a local folder,
or PostgreSQL with moto's S3 server). ``tracker.server_tracker`` is the server's own tracker
(what a test inspects behind the server); ``tracker.thread_server`` the server itself. Tests
that need the stores on the client ask for ``embedded_only``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
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


@pytest.fixture
def dt(tracker: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """The tracker, with the working directory (settings root) in a fresh folder."""
    from conveyor.data._context import reset_defaults

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    yield tracker
    reset_defaults()


@pytest.fixture
def make_tree(tmp_path: Path) -> Callable[..., Path]:
    """make_tree("name", {"a.txt": "x", "sub/b.txt": "y"}) → a folder with those files."""

    def make(name: str, files: dict[str, str | bytes]) -> Path:
        root = tmp_path / "trees" / name
        for rel, content in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content.encode() if isinstance(content, str) else content)
        return root

    return make


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[[str, str], Path]:
    def write(name: str, text: str) -> Path:
        path = tmp_path / "tables" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture(autouse=True)
def _fresh_default_stores() -> Iterator[None]:
    """Stores opened from the settings are cached per project root; close them per test."""
    yield
    from conveyor.data._context import reset_defaults

    reset_defaults()
