"""Fixtures of the pipeline tests: step modules written as real files (workers import them)."""

from __future__ import annotations

import importlib
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from fixtures.ray import ray_cluster  # noqa: F401  (fixture)

PREAMBLE = "import conveyor.pipelines as cp\nfrom conveyor.pipelines import step, pipeline\n"


@pytest.fixture
def pipes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., ModuleType]]:
    """Write ``source`` as a uniquely named module in a folder on sys.path and import it.

    ``pipes(source, name=...)`` rewrites the same module (to change a step's code)."""
    folder = tmp_path / "code"
    folder.mkdir(exist_ok=True)
    monkeypatch.syspath_prepend(str(folder))
    made: list[str] = []

    def make(source: str, name: str | None = None) -> ModuleType:
        name = name or f"pipes_{uuid.uuid4().hex[:10]}"
        (folder / f"{name}.py").write_text(PREAMBLE + textwrap.dedent(source), encoding="utf-8")
        importlib.invalidate_caches()
        sys.modules.pop(name, None)
        made.append(name)
        module = importlib.import_module(name)
        module.__conveyor_folder__ = folder  # type: ignore[attr-defined]
        return module

    yield make
    for name in made:
        sys.modules.pop(name, None)


@pytest.fixture
def local_tracker(project: Path) -> Iterator[object]:
    """The project's default tracker (SQLite + local artifacts under .conveyor/)."""
    from conveyor.tracking import get_tracker

    yield get_tracker()
