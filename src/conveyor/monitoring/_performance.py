"""Live performance: feedback labels joined to the prediction log, per window and version.

The log is what ``conveyor.serving.read_prediction_log(model, with_feedback=True)``
returns: one row per prediction with ``timestamp`` (ms or datetime), ``version``,
``latency_ms``, the ``prediction`` and the ``label`` that feedback supplied (NaN until
it arrives). Metrics are computed on the labelled rows only; latency on all rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from conveyor.errors import InvalidInput

CLASSIFICATION = "classification"
REGRESSION = "regression"


@dataclass(frozen=True)
class PerformanceRow:
    """Metrics of one window of one model version (``window_start`` in ms; None = all)."""

    window_start: int | None
    version: str | None
    rows: int
    labelled_rows: int
    metrics: dict[str, float] = field(default_factory=dict)


def infer_task(labels: Any) -> str:
    """Regression when labels are floats with many distinct values, classification otherwise."""
    import numpy as np

    values = labels.dropna()
    if values.dtype.kind == "f" and values.nunique() > 20 and not np.all(np.mod(values, 1) == 0):
        return REGRESSION
    return CLASSIFICATION


def _fractional(values: Any) -> bool:
    """True when numeric predictions hold a non-integer value (a class label never does)."""
    import numpy as np
    import pandas as pd

    if not pd.api.types.is_float_dtype(values):
        return False
    array = values.to_numpy(dtype=float)
    return bool(np.any(array != np.round(array)))


def score_frame(frame: Any, *, task: str | None = None, prediction: str = "prediction", label: str = "label",
                score: str | None = None) -> dict[str, float]:
    """Metrics of one frame: rows, labelled rows, latency percentiles, and accuracy/F1/AUC or
    MAE/RMSE on the rows with a label."""
    import numpy as np
    import pandas as pd

    out: dict[str, float] = {"rows": float(len(frame))}
    if "latency_ms" in frame and len(frame):
        latency = frame["latency_ms"].to_numpy(dtype=float)
        for q in (50, 95, 99):
            out[f"p{q}_latency_ms"] = float(np.nanpercentile(latency, q))
    if label not in frame or prediction not in frame:
        return out
    labelled = frame[frame[label].notna()]
    predicted = labelled[prediction]
    scorable = predicted.notna().to_numpy()
    if pd.api.types.is_numeric_dtype(predicted):  # NaN/inf answers count in nonfinite_prediction_rate, not here
        scorable = scorable & np.isfinite(predicted.to_numpy(dtype=float, na_value=np.nan))
    labelled = labelled[scorable]
    labelled, unusable = _usable(labelled, label, prediction)
    out["labelled_rows"] = float(len(labelled))
    if unusable:
        out["unusable_labels"] = float(unusable)
    if labelled.empty:
        return out
    task = task or infer_task(labelled[label])
    y, p = labelled[label], labelled[prediction]
    if task == CLASSIFICATION and _fractional(p):  # 0/1 labels, but a regressor's answers: not classes
        task = REGRESSION
    if task == REGRESSION:
        err = p.to_numpy(dtype=float) - y.to_numpy(dtype=float)
        out["mae"] = float(np.mean(np.abs(err)))
        out["rmse"] = float(np.sqrt(np.mean(err ** 2)))
        return out
    if task != CLASSIFICATION:
        raise InvalidInput(f"unknown task {task!r}", field="task", value=task, hint="classification or regression")
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

    y, p = _align_labels(y, p)
    classes = sorted(set(y) | set(p))
    binary = len(classes) <= 2
    average = "binary" if binary and set(classes) <= {0, 1} else "macro"
    out["accuracy"] = float(accuracy_score(y, p))
    out["f1"] = float(f1_score(y, p, average=average, zero_division=0))
    out["precision"] = float(precision_score(y, p, average=average, zero_division=0))
    out["recall"] = float(recall_score(y, p, average=average, zero_division=0))
    if score and score in labelled and binary and len(set(y)) == 2:
        scores = _positive_scores(labelled[score])
        if scores is not None:
            out["roc_auc"] = float(roc_auc_score(y, scores))
    return out


def _positive_scores(column: Any) -> Any:
    """Positive-class scores: the column itself, or the last class's probability when each
    row holds the served ``probabilities`` (a list per row); None when rows lack them."""
    import numpy as np

    first = column.iloc[0] if len(column) else None
    if isinstance(first, (list, tuple, np.ndarray)):
        if any(not isinstance(v, (list, tuple, np.ndarray)) or len(v) < 2 for v in column):
            return None
        return np.asarray([v[-1] for v in column], dtype=float)
    return column.to_numpy(dtype=float)


def _usable(labelled: Any, label: str, prediction: str) -> tuple[Any, int]:
    """The labelled rows whose label is of the predictions' kind (a number for numeric
    predictions, a string for string ones), and how many were not: one bad label is left
    out and counted instead of failing the whole window."""
    import numpy as np
    import pandas as pd

    if labelled.empty:
        return labelled, 0
    y = labelled[label]
    if pd.api.types.is_numeric_dtype(labelled[prediction]):
        if not pd.api.types.is_numeric_dtype(y):
            y = pd.to_numeric(y.map(lambda v: v if isinstance(v, (int, float, str)) else None), errors="coerce")
            labelled = labelled.assign(**{label: y})
        ok = np.isfinite(y.to_numpy(dtype=float, na_value=np.nan))
    else:
        ok = y.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
    return labelled[ok], int((~ok).sum())


def _align_labels(y: Any, p: Any) -> tuple[list[Any], list[Any]]:
    # feedback often arrives as floats (1.0) for integer predictions (1): compare as the same kind
    def norm(v: Any) -> Any:
        if isinstance(v, float) and v.is_integer():
            return int(v)
        return v.item() if hasattr(v, "item") else v

    return [norm(v) for v in y.tolist()], [norm(v) for v in p.tolist()]


def live_performance(
    log: Any,
    *,
    every: float | None = 3600.0,
    by_version: bool = True,
    task: str | None = None,
    prediction: str = "prediction",
    label: str = "label",
    score: str | None = None,
) -> list[PerformanceRow]:
    """Performance per window of ``every`` seconds (None: one window) and per model version.

    Example::

        log = conveyor.serving.read_prediction_log("churn", with_feedback=True)
        for row in live_performance(log, every=3600):
            print(row.window_start, row.version, row.metrics.get("accuracy"))
    """
    import pandas as pd

    if log is None or len(log) == 0:
        return []
    frame = log.copy()
    keys: list[str] = []
    if every is not None and "timestamp" in frame:
        ms = _millis(frame["timestamp"])
        step = int(every * 1000)
        frame["_window"] = (ms // step) * step
        keys.append("_window")
    if by_version and "version" in frame:
        frame["_version"] = frame["version"].astype(str)
        keys.append("_version")
    if label in frame:
        task = task or infer_task(frame[label])
    rows = []
    groups = frame.groupby(keys, sort=True) if keys else [((), frame)]
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        named = dict(zip(keys, key))
        metrics = score_frame(part, task=task, prediction=prediction, label=label, score=score)
        rows.append(PerformanceRow(
            int(named["_window"]) if "_window" in named else None,
            str(named["_version"]) if "_version" in named else None,
            int(metrics.pop("rows")), int(metrics.pop("labelled_rows", 0)), metrics,
        ))
    _ = pd  # pandas is the frame's library; imported for groupby's sake
    return rows


def _millis(column: Any) -> Any:
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(column):
        return column.astype("datetime64[ms, UTC]" if getattr(column.dt, "tz", None) else "datetime64[ms]").astype("int64")
    return column.astype("int64")
