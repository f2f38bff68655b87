"""Metrics computed with numpy from predictions, batched so that a paired bootstrap can
evaluate all its resamples at once.

Classification metrics are functions of a confusion matrix, so they take an array of
shape ``(..., k, k)`` (rows: true class, columns: predicted class). Regression metrics are
functions of a few sums (``n, Σ|e|, Σe², Σy, Σy²``), array of shape ``(..., 5)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from conveyor.errors import InvalidInput

Array = Any


@dataclass(frozen=True)
class Encoded:
    """Labels and predictions as class indices ``0..k-1``; ``positive`` is the index f1,
    precision and recall use for two classes (macro-averaged otherwise)."""

    classes: tuple[Any, ...]
    y: Array
    positive: int

    @property
    def k(self) -> int:
        return len(self.classes)

    def with_y(self, y: Array) -> Encoded:
        return Encoded(self.classes, y, self.positive)


def encode(y: Array, *predictions: Array, positive: Any = None) -> tuple[Encoded, list[Array]]:
    """Map labels and predictions of any dtype onto ``0..k-1`` with one shared class list."""
    y = np.asarray(y)
    preds = [np.asarray(p).reshape(-1) for p in predictions]
    classes = np.unique(np.concatenate([y.reshape(-1), *preds]))
    codes = [np.searchsorted(classes, a).astype(np.int64) for a in (y.reshape(-1), *preds)]
    if positive is None:
        positive_index = 1 if len(classes) == 2 and 1 in classes.tolist() and classes.tolist().index(1) == 1 else len(classes) - 1
    else:
        matches = np.flatnonzero(classes == positive)
        if not len(matches):
            raise InvalidInput(
                f"positive label {positive!r} is not among the labels {classes.tolist()[:10]}",
                field="positive_label", value=positive,
            )
        positive_index = int(matches[0])
    return Encoded(tuple(classes.tolist()), codes[0], positive_index), codes[1:]


def confusion(y: Array, pred: Array, k: int) -> Array:
    return np.bincount(y * k + pred, minlength=k * k).reshape(k, k).astype(np.float64)


def _safe_div(num: Array, den: Array) -> Array:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)


def _per_class(cm: Array) -> tuple[Array, Array, Array]:
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    precision = _safe_div(tp, cm.sum(axis=-2))
    recall = _safe_div(tp, cm.sum(axis=-1))
    f1 = _safe_div(2 * precision * recall, precision + recall)
    return precision, recall, f1


def _pick(values: Array, positive: int, k: int) -> Array:
    return values[..., positive] if k == 2 else values.mean(axis=-1)


def accuracy(cm: Array, positive: int) -> Array:
    return _safe_div(np.trace(cm, axis1=-2, axis2=-1), cm.sum(axis=(-2, -1)))


def _metric(index: int) -> Callable[[Array, int], Array]:
    def compute(cm: Array, positive: int) -> Array:
        return _pick(_per_class(cm)[index], positive, cm.shape[-1])

    return compute


def balanced_accuracy(cm: Array, positive: int) -> Array:
    return _per_class(cm)[1].mean(axis=-1)


def error_rate(cm: Array, positive: int) -> Array:
    return 1.0 - accuracy(cm, positive)


CLASSIFICATION: dict[str, Callable[[Array, int], Array]] = {
    "accuracy": accuracy,
    "balanced_accuracy": balanced_accuracy,
    "error_rate": error_rate,
    "f1": _metric(2),
    "precision": _metric(0),
    "recall": _metric(1),
}


def sums(y: Array, pred: Array) -> Array:
    """Per-example statistics whose column sums give every regression metric."""
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    error = np.asarray(pred, dtype=np.float64).reshape(-1) - y
    return np.column_stack([np.ones_like(y), np.abs(error), error * error, y, y * y])


def _mse(s: Array) -> Array:
    return _safe_div(s[..., 2], s[..., 0])


def _r2(s: Array) -> Array:
    n = s[..., 0]
    total = s[..., 4] - _safe_div(s[..., 3] ** 2, n)
    return 1.0 - _safe_div(s[..., 2], total)


REGRESSION: dict[str, Callable[[Array], Array]] = {
    "mae": lambda s: _safe_div(s[..., 1], s[..., 0]),
    "mse": _mse,
    "r2": _r2,
    "rmse": lambda s: np.sqrt(_mse(s)),
}

#: Metrics for which smaller is better; every other metric is better when larger.
LOWER_IS_BETTER = frozenset({"error_rate", "mae", "mse", "rmse", "brier", "ece", "log_loss"})
#: Classification metrics computed from predicted probabilities (see ``_proba``).
PROBABILITY_METRICS = frozenset({"brier", "ece", "log_loss", "roc_auc"})
TASKS: dict[str, dict[str, Any]] = {"classification": CLASSIFICATION, "regression": REGRESSION}


def known_metrics(task: str) -> set[str]:
    return set(TASKS[task]) | (set(PROBABILITY_METRICS) if task == "classification" else set())


def classification_metrics(encoded: Encoded, pred: Array) -> dict[str, float]:
    cm = confusion(encoded.y, pred, encoded.k)
    return {name: float(fn(cm, encoded.positive)) for name, fn in CLASSIFICATION.items()}


def regression_metrics(y: Array, pred: Array) -> dict[str, float]:
    total = sums(y, pred).sum(axis=0)
    return {name: float(fn(total)) for name, fn in REGRESSION.items()}


def improvement(metric: str, candidate: Array, champion: Array) -> Array:
    """How much better the candidate is (positive = better), whatever the metric's direction."""
    return champion - candidate if metric in LOWER_IS_BETTER else candidate - champion
