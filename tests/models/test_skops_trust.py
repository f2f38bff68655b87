"""scikit-learn packages load only trusted types unless the caller trusts more."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conveyor.errors import InvalidInput
from conveyor.models import UntrustedTypes, load, save


@pytest.fixture
def custom_pipeline(floats: np.ndarray) -> Any:
    from model_helpers import Doubler
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline

    x = floats.astype("float64")
    return make_pipeline(Doubler(), LinearRegression()).fit(x, x[:, 0])


def test_untrusted_types_are_refused_and_listed(tmp_path: Path, custom_pipeline: Any, floats: np.ndarray) -> None:
    save(custom_pipeline, tmp_path / "m", input_example=floats.astype("float64"))
    with pytest.raises(UntrustedTypes) as info:
        load(tmp_path / "m")
    assert isinstance(info.value, InvalidInput)
    assert "model_helpers.Doubler" in str(info.value)
    assert "trusted=['model_helpers.Doubler']" in str(info.value)  # the fix, spelled out
    assert info.value.value == ["model_helpers.Doubler"]


def test_trusting_the_listed_types_loads(tmp_path: Path, custom_pipeline: Any, floats: np.ndarray) -> None:
    x = floats.astype("float64")
    save(custom_pipeline, tmp_path / "m", input_example=x)
    model = load(tmp_path / "m", trusted=["model_helpers.Doubler"])
    np.testing.assert_allclose(model.predict(x), custom_pipeline.predict(x))


def test_trusting_something_else_is_not_enough(tmp_path: Path, custom_pipeline: Any) -> None:
    save(custom_pipeline, tmp_path / "m")
    with pytest.raises(UntrustedTypes, match="model_helpers.Doubler"):
        load(tmp_path / "m", trusted=["builtins.dict"])
