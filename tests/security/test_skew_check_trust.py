"""The monitor's training/serving skew check loads served packages only through the
registry's trust policy: a package holding an untrusted callable is not loaded (nor its
code run); the skew metric is then empty instead of computed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conveyor.errors import ConveyorError

CALLS: list[int] = []


def doubled(x: Any) -> Any:  # an arbitrary callable: skops refuses it unless trusted
    CALLS.append(1)
    return np.asarray(x) * 2


def test_skew_check_does_not_load_an_untrusted_package(project: Path) -> None:
    import pandas as pd
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    import conveyor
    import conveyor.models
    from conveyor.monitoring._production import SkewCheck
    from conveyor.registry import Registry
    from conveyor.tracking import get_tracker

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:, :4]
    model = make_pipeline(FunctionTransformer(doubled), LogisticRegression(max_iter=1000)).fit(X, y)
    with conveyor.start_run(experiment="sec", name="untrusted") as run:
        conveyor.models.log(model, "model", input_example=X.head(3))
    tracker = get_tracker()
    tracker.flush()
    version = Registry(tracker).register(f"runs:/{run.id}/model", "untrusted",
                                         trusted=[f"{__name__}.doubled"]).version
    CALLS.clear()
    window = pd.DataFrame(X.iloc[:50]).assign(prediction=model.predict(X.iloc[:50]), version=str(version))
    CALLS.clear()
    measured = SkewCheck(tracker).measure(window, "untrusted", prediction="prediction", features=list(X.columns),
                                          sample=50, tolerance=1e-6)
    assert measured == {"skew_rows": 0.0, "skew_mismatch_rate": None}
    assert CALLS == []  # the package's callable never ran
    with pytest.raises(ConveyorError):  # the reason: the default trust policy refuses the package
        Registry(tracker).load_model(f"models:/untrusted/{version}")
