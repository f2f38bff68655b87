"""Importable helpers for the model tests: a pyfunc class and an untrusted sklearn transformer."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


class Threshold:
    """A plain Python model: class 1 when the weighted sum passes a threshold."""

    def __init__(self, weights: list[float], threshold: float) -> None:
        self.weights = np.asarray(weights, dtype="float64")
        self.threshold = threshold
        self.label = "threshold"

    def predict(self, frame: Any) -> np.ndarray:
        values = frame.to_numpy() if hasattr(frame, "to_numpy") else np.asarray(frame)
        return (values @ self.weights > self.threshold).astype("int64")


class Opaque:
    """State the pyfunc flavor must refuse to store (an arbitrary object)."""

    def __init__(self) -> None:
        self.helper = object()

    def predict(self, data: Any) -> Any:
        return data


class Doubler(TransformerMixin, BaseEstimator):
    """A custom transformer: skops does not trust it unless the loader says so."""

    def fit(self, X: Any, y: Any = None) -> Doubler:
        return self

    def transform(self, X: Any) -> Any:
        return np.asarray(X) * 2.0
