"""The registry tests run embedded (the tracker opens the stores) and remote (a
``RemoteTracker``, and so a ``RemoteRegistry``, talks to a real ``conveyor server`` over
the ``store_url`` stores). A test that changes the stores behind the registry's back (a
crash, a purge check) does it through ``tracker.server_tracker`` in remote mode."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.remote import mode_project, mode_tracker


@pytest.fixture
def tracker(mode: str, store: Any, blobs: Any, tmp_path: Path) -> Iterator[Any]:
    """A tracker over the parametrized store: embedded, or remote through a live server
    (``tracker.server_tracker`` opens the stores in both modes)."""
    yield from mode_tracker(mode, store, blobs, tmp_path / "spool")


@pytest.fixture
def project(mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh project folder as the working directory (fixtures.remote.mode_project)."""
    yield from mode_project(mode, tmp_path, monkeypatch)


@pytest.fixture
def registry(tracker: Any) -> Any:
    from conveyor.registry import Registry

    return Registry(tracker)


@pytest.fixture
def model_run(tracker: Any, tmp_path: Path) -> Callable[..., str]:
    """A run with a real model package ``model`` (a tiny linear regression, different each
    time); returns its ``runs:/`` URI."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    import conveyor.models

    counter = iter(range(1_000_000))

    def make(tags: dict[str, str] | None = None) -> str:
        n = next(counter)
        x = pd.DataFrame({"x": np.arange(6, dtype=float)})
        model = LinearRegression().fit(x, (n + 1) * x["x"])
        run = tracker.create_run("registry-tests", tags=tags)
        conveyor.models.log(model, "model", input_example=x[:3], run_id=run.id, tracker=tracker)
        tracker.log_metrics(run.id, {"f1": 0.5 + n / 100})
        return f"runs:/{run.id}/model"

    return make
