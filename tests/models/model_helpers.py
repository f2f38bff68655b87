"""Importable helpers for the model tests: a pyfunc class, an untrusted sklearn transformer and a
third-party flavor plugin."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from conveyor.models import Flavor


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


class Linear:
    """A model type only the third-party ``linear-npz`` flavor below knows."""

    def __init__(self, weights: np.ndarray) -> None:
        self.weights = weights

    def predict(self, x: Any) -> np.ndarray:
        return np.asarray(x) @ self.weights


class LinearFlavor(Flavor):
    """A third-party flavor, as a plugin package would declare it under ``conveyor.flavors``."""

    name = "linear-npz"
    requirements = ()

    def can_handle(self, obj: Any) -> bool:
        return isinstance(obj, Linear)

    def save(self, obj: Any, folder: Path, **options: Any) -> dict[str, Any]:
        np.savez(folder / "weights.npz", w=obj.weights)
        return {"file": "weights.npz"}

    def load(self, folder: Path, config: Mapping[str, Any], **opts: Any) -> Any:
        with np.load(folder / config["file"], allow_pickle=False) as data:
            return Linear(data["w"])

    def predict(self, model: Any, batch: Any) -> Any:
        return model.predict(batch.to_numpy())

    def native_predict(self, model: Any, example: Any) -> Any:
        return model.predict(example)
