"""Metrics of predicted class probabilities: ROC AUC, log-loss, Brier score and expected
calibration error, each computed for a whole matrix of row weights at once, so that the
paired bootstrap evaluates all its resamples in a few array operations (a resample is a
vector of how many times each row was drawn).

Definitions (``p`` the probability matrix, columns in the order of the encoded classes):

* ``roc_auc``: two classes, the AUC of the positive class's probability (ties count ½);
  more classes, the unweighted mean of the one-vs-rest AUC of each class present in the
  labels (scikit-learn's ``multi_class="ovr", average="macro"``).
* ``log_loss``: mean of −ln p[true class], probabilities clipped to [1e-15, 1].
* ``brier``: two classes, mean of (p[positive] − 1{y = positive})² (scikit-learn's
  ``brier_score_loss``); more classes, mean over rows of Σ_k (p_k − 1{y = k})² (Brier, 1950).
* ``ece``: expected calibration error of the top-label confidence over 10 equal-width bins:
  Σ_bins |Σ_rows in bin (1{argmax p = y} − max p)| / n (Guo et al., 2017).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from conveyor.errors import InvalidInput

Array = Any
PROBABILITY_METRICS = ("brier", "ece", "log_loss", "roc_auc")
LOWER_IS_BETTER = frozenset({"brier", "ece", "log_loss"})
ECE_BINS = 10
_EPS = 1e-15
_CHUNK_CELLS = 4_000_000  # resamples × rows per bootstrap chunk (~32 MB of weights)


def aligned(proba: Array, model_classes: Any, classes: tuple[Any, ...], *, who: str) -> Array:
    """``proba`` (rows × the model's classes) with its columns reordered to ``classes`` (the
    gate's encoded labels); a label the model never learned gets probability 0."""
    p = np.asarray(proba, dtype=np.float64)
    labels = list(np.asarray(model_classes).reshape(-1).tolist()) if model_classes is not None else None
    if p.ndim != 2 or (labels is not None and p.shape[1] != len(labels)):
        raise InvalidInput(f"the {who}'s predict_proba returned shape {list(p.shape)}", field="predict_proba",
                           value=list(p.shape), hint="predict_proba must answer one column per class")
    if labels is None:  # no labels known: the columns are the classes in sorted order
        if p.shape[1] != len(classes):
            raise InvalidInput(
                f"the {who}'s predict_proba has {p.shape[1]} columns for {len(classes)} labels and names no classes",
                field="predict_proba", value=p.shape[1],
                hint="re-save the model with conveyor so its signature records the class labels")
        return p
    out = np.zeros((p.shape[0], len(classes)))
    index = {_key(c): i for i, c in enumerate(labels)}
    for j, cls in enumerate(classes):
        i = index.get(_key(cls))
        if i is not None:
            out[:, j] = p[:, i]
    return out


def _key(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _weights(w: Array | None, n: int) -> Array:
    return np.ones((1, n)) if w is None else np.asarray(w, dtype=np.float64)


def _auc(score: Array, positive: Array, w: Array) -> Array:
    order = np.argsort(score, kind="mergesort")
    s, pos, wo = score[order], positive[order], w[:, order]
    starts = np.concatenate([[0], np.flatnonzero(np.diff(s)) + 1])
    g_pos = np.add.reduceat(wo * pos, starts, axis=1)
    g_neg = np.add.reduceat(wo * ~pos, starts, axis=1)
    below = np.cumsum(g_neg, axis=1) - g_neg
    num = np.sum(g_pos * (below + 0.5 * g_neg), axis=1)
    den = g_pos.sum(axis=1) * g_neg.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def roc_auc(y: Array, p: Array, positive: int, w: Array | None = None) -> Array:
    w = _weights(w, len(y))
    k = p.shape[1]
    if k == 2:
        return _auc(p[:, positive], y == positive, w)
    per_class = [_auc(p[:, c], y == c, w) for c in range(k) if np.any(y == c)]
    if not per_class:
        return np.full(w.shape[0], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample with no row of a class: that AUC is left out
        return np.nanmean(np.vstack(per_class), axis=0)


def _mean(per_row: Array, w: Array) -> Array:
    total = w.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, (w @ per_row) / np.where(total > 0, total, 1), np.nan)


def log_loss(y: Array, p: Array, positive: int, w: Array | None = None) -> Array:
    return _mean(-np.log(np.clip(p[np.arange(len(y)), y], _EPS, 1.0)), _weights(w, len(y)))


def brier(y: Array, p: Array, positive: int, w: Array | None = None) -> Array:
    if p.shape[1] == 2:
        per_row = (p[:, positive] - (y == positive)) ** 2
    else:
        onehot = np.eye(p.shape[1])[y]
        per_row = ((p - onehot) ** 2).sum(axis=1)
    return _mean(per_row, _weights(w, len(y)))


def ece(y: Array, p: Array, positive: int, w: Array | None = None) -> Array:
    w = _weights(w, len(y))
    confidence = p.max(axis=1)
    gap = (p.argmax(axis=1) == y).astype(np.float64) - confidence
    bins = np.minimum((confidence * ECE_BINS).astype(np.int64), ECE_BINS - 1)
    per_bin = (w * gap) @ np.eye(ECE_BINS)[bins]
    total = w.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, np.abs(per_bin).sum(axis=1) / np.where(total > 0, total, 1), np.nan)


METRICS = {"roc_auc": roc_auc, "log_loss": log_loss, "brier": brier, "ece": ece}


def probability_metrics(y: Array, p: Array, positive: int) -> dict[str, float]:
    """Every probability metric of labels ``y`` (codes 0..k-1) and probabilities ``p``."""
    return {name: float(fn(y, p, positive)[0]) for name, fn in METRICS.items()}


def bootstrap(y: Array, cand: Array, champ: Array, metric: str, positive: int, *, resamples: int,
              seed: int) -> tuple[float, Array]:
    """(observed improvement, improvement in each paired resample of the rows)."""
    from conveyor.gates._metrics import improvement

    fn = METRICS[metric]
    n = len(y)
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_CELLS // max(n, 1))
    deltas = []
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        rows = rng.integers(0, n, size=(size, n), dtype=np.int32)
        offsets = (np.arange(size, dtype=np.int64) * n)[:, None]
        w = np.bincount((rows + offsets).ravel(), minlength=size * n).reshape(size, n).astype(np.float64)
        deltas.append(improvement(metric, fn(y, cand, positive, w), fn(y, champ, positive, w)))
    observed = float(improvement(metric, fn(y, cand, positive)[0], fn(y, champ, positive)[0]))
    values = np.concatenate(deltas)
    return observed, values[np.isfinite(values)]
