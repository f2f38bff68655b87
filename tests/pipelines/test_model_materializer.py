"""XGBoost, LightGBM, Keras and PyTorch models travel between steps as model packages.

Before, a step returning one of them failed (``no materializer handles that type``, or
skops refusing the XGBoost wrapper's types), so a pipeline could not hand such a model
from its training step to its evaluation step (issue 10's corpus).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conveyor.models import LoadedModel
from conveyor.pipelines import get_materializer, materializer_for

X = np.random.default_rng(0).normal(size=(40, 3)).astype("float32")
Y = (X[:, 0] + X[:, 1] > 0).astype(int)


def _xgboost() -> tuple[Any, Callable[[Any], Any]]:
    xgboost = pytest.importorskip("xgboost")
    model = xgboost.XGBClassifier(n_estimators=5, max_depth=2, n_jobs=1).fit(X, Y)
    return model, lambda m: m.predict(X)


def _lightgbm() -> tuple[Any, Callable[[Any], Any]]:
    lightgbm = pytest.importorskip("lightgbm")
    model = lightgbm.LGBMClassifier(n_estimators=5, num_leaves=4, min_child_samples=2, verbose=-1).fit(X, Y)
    return model, lambda m: m.predict(X)


def _keras() -> tuple[Any, Callable[[Any], Any]]:
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    return model, lambda m: np.asarray(m(X)) if hasattr(m, "layers") else m.predict(X)


def _torch() -> tuple[Any, Callable[[Any], Any]]:
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))

    def run(m: Any) -> Any:
        if not isinstance(m, torch.nn.Module):
            return m.predict(X)
        with torch.no_grad():
            return m(torch.from_numpy(X)).numpy()

    return net, run


@pytest.mark.parametrize("make", [_xgboost, _lightgbm, _keras, _torch], ids=["xgboost", "lightgbm", "keras", "torch"])
def test_framework_models_round_trip_as_packages(make: Any, tmp_path: Path) -> None:
    model, predict = make()
    chosen = materializer_for(model, step="fit")
    assert chosen.name == "model"
    folder = tmp_path / "out"
    folder.mkdir()
    chosen.save(model, folder)
    assert (folder / "model" / "conveyor-model.json").is_file()  # a model package
    for written in folder.rglob("*"):
        if written.is_file():
            assert not written.name.endswith((".pkl", ".pickle", ".joblib"))
    loaded = get_materializer("model").load(folder)
    assert isinstance(loaded, LoadedModel)  # what serving would load; .native is the framework's
    np.testing.assert_allclose(np.asarray(predict(loaded)).reshape(-1), np.asarray(predict(model)).reshape(-1),
                               rtol=1e-5, atol=1e-6)


def test_scikit_learn_stays_with_skops_and_other_objects_are_not_models() -> None:
    from sklearn.linear_model import LogisticRegression

    assert materializer_for(LogisticRegression().fit(X, Y)).name == "sklearn"
    assert get_materializer("model").handles(object()) is False
    assert get_materializer("model").handles(X) is False
