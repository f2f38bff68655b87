"""The gate tests that use a registry run embedded (the tracker opens the stores) and remote
(a ``RemoteTracker``, so a ``RemoteRegistry``: models and data load through a real
``conveyor server``, evaluations are stored and read through its API). A module that needs
the stores themselves pins ``mode`` to ``"embedded"``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fixtures.gate_models import fit
from fixtures.remote import mode_tracker


@pytest.fixture
def tracker(mode: str, store: Any, blobs: Any, tmp_path: Path) -> Iterator[Any]:
    """A tracker over the parametrized store: embedded, or remote through a live server
    (``tracker.server_tracker`` opens the stores in both modes)."""
    yield from mode_tracker(mode, store, blobs, tmp_path / "spool")


@pytest.fixture
def registry(tracker: Any) -> Any:
    from conveyor.registry import Registry

    return Registry(tracker)


@pytest.fixture(scope="session")
def frames() -> tuple[Any, Any]:
    """Train and held-out frames of a binary task with a categorical ``region`` column."""
    import pandas as pd
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=900, n_features=6, n_informative=4, n_clusters_per_class=1, class_sep=1.5, flip_y=0.02, random_state=0)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(6)])
    frame["region"] = np.random.default_rng(0).integers(0, 3, len(frame))
    frame["label"] = y
    return frame.iloc[:500].reset_index(drop=True), frame.iloc[500:].reset_index(drop=True)


@pytest.fixture
def candidate(tracker: Any, registry: Any, frames: tuple[Any, Any]) -> Callable[..., Any]:
    """Train a model of a given quality, log it as a package in a run, register it."""
    import conveyor.models

    def make(kind: str = "good", name: str = "clf") -> Any:
        train = frames[0]
        model = fit(kind, train)
        example = train.drop(columns=["label", "x0"] if kind == "regressor" else ["label"]).head(3)
        run = tracker.create_run("gates-tests", name=kind)
        conveyor.models.log(model, "model", input_example=example, run_id=run.id, tracker=tracker)
        return registry.register(f"runs:/{run.id}/model", name)

    return make

