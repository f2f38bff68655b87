"""Every flavor passes the one shared suite (conveyor.models.flavor_checks)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conveyor.models import FlavorCase, flavor_checks


def _sklearn_frame(request: pytest.FixtureRequest) -> FlavorCase:
    frame, _ = request.getfixturevalue("table")
    model = request.getfixturevalue("sk_classifier")
    return FlavorCase("sklearn", model, frame.iloc[:10], model.predict)


def _sklearn_array(request: pytest.FixtureRequest) -> FlavorCase:
    from sklearn.linear_model import Ridge

    x = request.getfixturevalue("floats").astype("float64")
    model = Ridge().fit(x, x.sum(axis=1))
    return FlavorCase("sklearn", model, x, model.predict)


def _onnx(request: pytest.FixtureRequest) -> FlavorCase:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType

    frame, _ = request.getfixturevalue("table")
    model = request.getfixturevalue("sk_classifier")
    proto = convert_sklearn(
        model, initial_types=[("input", DoubleTensorType([None, frame.shape[1]]))], options={"zipmap": False}
    )
    return FlavorCase("onnx", proto, frame.iloc[:10], model.predict)


def _pyfunc(request: pytest.FixtureRequest) -> FlavorCase:
    from model_helpers import Threshold

    frame, _ = request.getfixturevalue("table")
    model = Threshold([0.1, 0.05, 0.01, 0.001, 1.0, 1.0], 5.0)
    return FlavorCase("pyfunc", model, frame.iloc[:10], model.predict, trusted=["model_helpers.Threshold"])


def _keras(request: pytest.FixtureRequest) -> FlavorCase:
    model = request.getfixturevalue("keras_model")
    x = request.getfixturevalue("floats")
    return FlavorCase("keras", model, x, lambda data: model.predict(np.asarray(data), verbose=0))


def _torch_reference(model: Any) -> Callable[[Any], Any]:
    import torch

    def reference(data: Any) -> Any:
        with torch.no_grad():
            return model(torch.from_numpy(np.asarray(data, dtype="float32"))).numpy()

    return reference


def _torchscript(request: pytest.FixtureRequest) -> FlavorCase:
    model = request.getfixturevalue("torch_net")
    return FlavorCase("pytorch", model, request.getfixturevalue("floats"), _torch_reference(model))


def _torch_state_dict(request: pytest.FixtureRequest) -> FlavorCase:
    model = request.getfixturevalue("torch_net")
    return FlavorCase(
        "pytorch", model, request.getfixturevalue("floats"), _torch_reference(model),
        options={"factory": "torch_nets:build"}, trusted=["torch_nets.build"],
    )


CASES: dict[str, Any] = {
    "sklearn-frame": _sklearn_frame,
    "sklearn-array": _sklearn_array,
    "onnx": _onnx,
    "pyfunc": _pyfunc,
    "keras": pytest.param(_keras, marks=pytest.mark.tensorflow),
    "torchscript": pytest.param(_torchscript, marks=pytest.mark.torch),
    "torch-state-dict": pytest.param(_torch_state_dict, marks=pytest.mark.torch),
}


@pytest.fixture(
    scope="module",
    params=list(CASES.values()),
    ids=list(CASES),
)
def case(request: pytest.FixtureRequest) -> FlavorCase:
    factory: Callable[[pytest.FixtureRequest], FlavorCase] = request.param
    return factory(request)


@pytest.mark.parametrize("check", flavor_checks(), ids=lambda c: c.__name__)
def test_flavor_suite(case: FlavorCase, check: Callable[[FlavorCase, Path], None], tmp_path: Path) -> None:
    check(case, tmp_path)


def test_a_plugin_flavor_passes_the_same_suite(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A third-party flavor, found through the ``conveyor.flavors`` entry-point group."""
    from model_helpers import Linear

    from conveyor.models import _flavor, check_flavor, flavor_names

    # the entry-point table as an installed plugin distribution would declare it
    monkeypatch.setattr(_flavor, "_plugins", lambda: {"linear-npz": "model_helpers:LinearFlavor"})
    monkeypatch.setattr(_flavor, "_cache", {})
    assert flavor_names()[-1] == "linear-npz"
    model = Linear(np.array([0.5, -1.0, 2.0, 0.0]))
    x = np.random.default_rng(1).random((6, 4))
    check_flavor(FlavorCase("linear-npz", model, x, model.predict), tmp_path)
