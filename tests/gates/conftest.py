from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest


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


def fit(kind: str, train: Any) -> Any:
    from sklearn.linear_model import LogisticRegression

    X, y = train.drop(columns=["label"]), train["label"]
    if kind == "good":
        return LogisticRegression(max_iter=500).fit(X, y)
    if kind == "bad":  # one weak feature only: clearly worse on the same rows
        return LogisticRegression(max_iter=500).fit(X.assign(**{c: 0.0 for c in X.columns if c != "x5"}), y)
    raise ValueError(kind)


@pytest.fixture
def candidate(tracker: Any, registry: Any, frames: tuple[Any, Any]) -> Callable[..., Any]:
    """Train a model of a given quality, log it as a package in a run, register it."""
    import conveyor.models

    def make(kind: str = "good", name: str = "clf") -> Any:
        train = frames[0]
        model = fit(kind, train)
        run = tracker.create_run("gates-tests", name=kind)
        conveyor.models.log(model, "model", input_example=train.drop(columns=["label"]).head(3),
                            run_id=run.id, tracker=tracker)
        return registry.register(f"runs:/{run.id}/model", name)

    return make
