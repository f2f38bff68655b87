"""Production checks of the ML Test Score's monitoring section, measured on every evaluation.

- ``skew_mismatch_rate`` (Monitor 3, training/serving skew): a sample of the logged serving
  rows is fed again, offline, through the registered package of the version that served
  it — the training code's own preprocessing and estimator (e.g. the whole scikit-learn
  ``Pipeline``), loaded from the registry, called in one batch — and its predictions are
  compared with what the server answered. Any difference (a number outside the tolerance,
  a different class) is skew between the serving path (request parsing, type coercion,
  column order, a stale or different package) and the training code. It cannot see
  feature code that runs *before* the request reaches conveyor.
- ``nonfinite_prediction_rate`` (Monitor 5): share of predictions that are missing, NaN or
  ±inf.
- ``model_age_days`` (Monitor 4): days since the served version was registered.
- ``p95_latency_ratio`` (Monitor 6): this window's p95 latency over the previous
  evaluation's.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from conveyor.errors import ConveyorError

log = logging.getLogger("conveyor.monitoring")
_DAY_MS = 86_400_000


def nonfinite_rate(window: Any, prediction: str) -> float | None:
    """Share of rows whose ``prediction`` is missing, NaN or infinite (None without predictions)."""
    import pandas as pd

    if prediction not in window or not len(window):
        return None
    values = window[prediction]
    bad = values.isna().to_numpy()
    if pd.api.types.is_numeric_dtype(values):
        bad = bad | ~np.isfinite(values.to_numpy(dtype=np.float64, na_value=np.nan))
    return float(bad.mean())


def model_age_days(created_at_ms: int | None, now_ms: int) -> float | None:
    """Days between registering the served version and ``now_ms``."""
    if not created_at_ms:
        return None
    return max(0.0, (now_ms - created_at_ms) / _DAY_MS)


def latency_ratio(current: float | None, previous: float | None) -> float | None:
    """``current / previous`` p95 latency; None when either is unknown or the previous is 0."""
    if current is None or previous is None or previous <= 0:
        return None
    return float(current) / float(previous)


class SkewCheck:
    """Re-predicts logged serving rows with each version's registered package (loaded once
    per version and cached) and counts disagreements with the logged answers."""

    def __init__(self, tracker: Any) -> None:
        self.tracker = tracker
        self._models: dict[tuple[str, str], Any] = {}

    def model(self, model: str, version: str) -> Any:
        """The registered package of ``model`` version ``version`` (None when it cannot be loaded)."""
        key = (model, version)
        if key not in self._models:
            if len(self._models) >= 8:  # a long `monitor watch` sees many versions: keep the newest few
                self._models.pop(next(iter(self._models)))
            from conveyor.registry import Registry

            try:
                self._models[key] = Registry(self.tracker).load_model(f"models:/{model}/{version}")
            except ConveyorError as exc:  # untrusted types, deleted version: no recomputation
                log.warning("skew check: cannot load %s v%s: %s", model, version, exc.message)
                self._models[key] = None
        return self._models[key]

    def measure(self, window: Any, model: str, *, prediction: str, features: list[str], sample: int,
                tolerance: float, seed: int = 0) -> dict[str, float | None]:
        """``skew_rows`` (rows recomputed) and ``skew_mismatch_rate`` (share that differ)."""
        empty: dict[str, float | None] = {"skew_rows": 0.0, "skew_mismatch_rate": None}
        if sample <= 0 or not len(window) or prediction not in window or "version" not in window:
            return empty
        rows = window.sample(n=min(sample, len(window)), random_state=seed) if len(window) > sample else window
        compared = mismatched = 0
        for version, part in rows.groupby(rows["version"].astype(str), sort=True):
            loaded = self.model(model, version)
            if loaded is None:
                continue
            inputs = self._inputs(loaded, part, features)
            if inputs is None:
                continue
            try:
                again = np.asarray(loaded.predict(inputs))
            except (ConveyorError, ValueError, TypeError) as exc:
                log.warning("skew check: %s v%s cannot predict the logged rows: %s", model, version, exc)
                continue
            if again.ndim > 1:
                again = again[:, 0] if again.shape[1] == 1 else None
            if again is None:
                continue
            compared += len(part)
            mismatched += int((~_same(part[prediction].to_numpy(), again, tolerance)).sum())
        if not compared:
            return empty
        return {"skew_rows": float(compared), "skew_mismatch_rate": mismatched / compared}

    @staticmethod
    def _inputs(loaded: Any, part: Any, features: list[str]) -> Any:
        signature = getattr(loaded, "signature", None)
        names = [c.name for c in signature.inputs] if signature is not None and signature.inputs else features
        names = [n for n in names if n is not None]
        if not names or any(n not in part for n in names):
            return None
        return part[names].reset_index(drop=True)


def _same(logged: Any, again: Any, tolerance: float) -> Any:
    """Elementwise agreement: numbers within ``tolerance`` (relative and absolute), others equal
    as strings (JSON turns 1 into 1.0 or "1"; both sides are compared as the same kind)."""
    try:
        a = np.asarray(logged, dtype=np.float64)
        b = np.asarray(again, dtype=np.float64)
    except (TypeError, ValueError):
        return np.array([str(x) == str(y) for x, y in zip(logged, again, strict=True)])
    both_nan = np.isnan(a) & np.isnan(b)
    return both_nan | np.isclose(a, b, rtol=tolerance, atol=tolerance)
