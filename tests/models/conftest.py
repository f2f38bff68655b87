"""Fixtures of the model tests: tiny real models of every framework, built once per session.

TensorFlow and torch are imported once (session fixtures); where one is not installed its
tests skip with the reason.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow is first imported
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "tensorflow: needs TensorFlow/Keras (skipped when missing)")
    config.addinivalue_line("markers", "torch: needs PyTorch (skipped when missing)")


def _need(module: str, marker: str) -> Any:
    return pytest.importorskip(module, reason=f"{module} is not installed: the {marker} flavor tests need it")


@pytest.fixture(scope="session")
def table() -> Any:
    """A small binary classification table (breast cancer, 6 named float columns)."""
    from sklearn.datasets import load_breast_cancer

    frame, target = load_breast_cancer(return_X_y=True, as_frame=True)
    frame = frame.iloc[:, :6].copy()
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    return frame, target.to_numpy()


@pytest.fixture(scope="session")
def sk_classifier(table: Any) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame, target = table
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(frame, target)


@pytest.fixture(scope="session")
def keras_model() -> Any:
    keras = _need("keras", "keras")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu"), keras.layers.Dense(1)])
    return model


@pytest.fixture(scope="session")
def torch_net() -> Any:
    _need("torch", "pytorch")
    from torch_nets import build

    return build().eval()


@pytest.fixture(scope="session")
def floats() -> np.ndarray:
    return np.random.default_rng(0).random((8, 4)).astype("float32")
