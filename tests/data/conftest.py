"""Fixtures for conveyor.data: a tracker over SQLite and PostgreSQL in a scratch working
directory (the stat cache lives under its .conveyor/), and small files to version."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


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
