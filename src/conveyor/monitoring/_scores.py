"""Prediction drift on scores: has the distribution of what the model outputs moved?

The served version's package scores two samples of rows: up to ``SAMPLE`` rows of the
monitor's reference data (once per version and reference; the summary is stored like any
reference summary) and up to ``SAMPLE`` rows of the window's logged inputs. The scores are

- a classifier with ``predict_proba``: its class probabilities, one column per class
  (``score:<class>``), or only the positive class's (the second of two) for a binary one;
- a model without probabilities whose prediction is a float (a regressor): that output
  (``score``).

Each score column is compared with the monitor's drift statistic (``method``, ``threshold``;
``auto`` picks KS on small samples and Wasserstein on large ones, as for features). A
classifier without probabilities has no scores: its label drift is ``prediction_drift``.
Both samples are re-predicted with the same package, so the comparison sees only how the
inputs moved the outputs, never a difference between two models.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

import numpy as np

from conveyor.errors import ConveyorError
from conveyor.monitoring._drift import ColumnDrift, compare

log = logging.getLogger("conveyor.monitoring")
SAMPLE = 5000
_SEED = 0


def model_scores(loaded: Any, frame: Any) -> tuple[str, Any] | None:
    """``(kind, DataFrame of score columns)`` of ``loaded`` on ``frame``'s signature columns,
    or None for a model that has no scores (or cannot score these rows)."""
    import pandas as pd

    signature = getattr(loaded, "signature", None)
    names = [c.name for c in signature.inputs] if signature is not None and signature.inputs else None
    if names is None or any(n not in frame for n in names):
        return None
    inputs = frame[names].reset_index(drop=True)
    try:
        if getattr(loaded, "has_proba", False):
            proba = np.asarray(loaded.predict_proba(inputs), dtype=np.float64)
            spec = signature.probabilities
            classes = list(spec.classes) if spec is not None and spec.classes else list(range(proba.shape[1]))
            if proba.ndim != 2 or proba.shape[1] != len(classes):
                return None
            if len(classes) == 2:
                return "probabilities", pd.DataFrame({f"score:{classes[1]}": proba[:, 1]})
            return "probabilities", pd.DataFrame({f"score:{c}": proba[:, i] for i, c in enumerate(classes)})
        output = np.asarray(loaded.predict(inputs))
    except (ConveyorError, ValueError, TypeError) as exc:
        log.warning("score drift: the model cannot score these rows: %s", exc)
        return None
    if output.ndim == 2 and output.shape[1] == 1:
        output = output[:, 0]
    if output.ndim != 1 or output.dtype.kind != "f":
        return None
    return "prediction", pd.DataFrame({"score": output})


def _sample(frame: Any) -> Any:
    return frame.sample(n=SAMPLE, random_state=_SEED) if len(frame) > SAMPLE else frame


class ScoreDrift:
    """Reference scores per (model, version, reference), made once and stored; current
    scores per evaluation."""

    def __init__(self, tracker: Any, load_model: Any, load_reference: Any) -> None:
        self.tracker = tracker
        self._load_model = load_model  # (model, version) -> LoadedModel or None
        self._load_reference = load_reference  # key -> table

    def measure(self, window: Any, model: str, version: str | None, ref_key: str, *, method: str,
                threshold: float | None) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """(rule metrics, the score drift report for the evaluation) — empty when there are no scores."""
        from conveyor.monitoring._reference import reference_summary, resolve_reference_key

        empty: dict[str, Any] = {"score_drift": None, "score_drift_value": None}
        if version is None or not len(window):
            return empty, None
        loaded = self._load_model(model, version)
        if loaded is None:
            return empty, None
        current = model_scores(loaded, _sample(window))
        if current is None:
            return empty, None
        kind, scores = current
        ref_key = resolve_reference_key(ref_key, self.tracker)
        key = f"scores:{model}/{version}:{ref_key}"
        made: dict[str, Any] = {}

        def reference_scores(_: str) -> Any:
            found = model_scores(loaded, _sample(self._load_reference(ref_key)))
            if found is None or list(found[1].columns) != list(scores.columns):
                raise _NoScores
            made["rows"] = len(found[1])
            return found[1]

        try:
            reference = reference_summary(self.tracker, key, load=reference_scores)
        except _NoScores:
            return empty, None
        report = compare(reference, scores, columns=list(scores.columns), method=method, threshold=threshold)
        columns = [c for c in report.columns if c.status == "ok"]
        metrics = dict(empty)
        if columns:
            metrics["score_drift"] = float(any(c.drifted for c in columns))
        if len(report.columns) == 1:
            metrics["score_drift_value"] = report.columns[0].value
        if kind == "probabilities":
            for c in columns:
                metrics[f"class_score_drift({c.column.removeprefix('score:')})"] = float(c.drifted)
        return metrics, {
            "kind": kind, "version": version, "reference": ref_key, "n_reference": reference.n_rows,
            "n_current": len(scores), "columns": [_column(c) for c in report.columns],
        }


def _column(c: ColumnDrift) -> dict[str, Any]:
    return {k: v for k, v in asdict(c).items() if k != "role"}


class _NoScores(Exception):
    """The reference rows cannot be scored like the window's (columns missing, no scores)."""
