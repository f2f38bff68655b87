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
