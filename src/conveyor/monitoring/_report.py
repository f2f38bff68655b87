"""Monitoring reports: a JSON document and a self-contained HTML page.

The page embeds only summaries — per-column distributions binned from the stored
reference and window summaries, the drift table, data quality and metrics over time —
as inline SVG with real axes (``_charts``), rendered by ``_report_html``: no CDN, nothing
fetched, no raw rows, so a report over 100 columns is tens of kilobytes, not the data set
(evidently#15).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from conveyor.monitoring._columns import NUMERIC
from conveyor.monitoring._drift import DriftReport
from conveyor.monitoring._report_html import render_html
from conveyor.monitoring._summary import ColumnSummary, Summary

log = logging.getLogger("conveyor.monitoring")
__all__ = ["distribution", "drift_report_data", "prediction_data", "render_html", "report_data"]

BINS = 30
TOP_CATEGORIES = 15
MAX_PLOTS = 60
SERIES = ("drift_share", "prediction_drift_value", "accuracy", "f1", "roc_auc", "mae", "rmse", "p95_latency_ms", "rows")
#: Any other numeric metric with one of these prefixes is charted too (prediction/score drift
#: measures an evaluation may add).
SERIES_PREFIXES = ("prediction_drift", "score_drift")


def series_keys(metrics: list[dict[str, Any]]) -> list[str]:
    """``SERIES`` plus the numeric prediction/score-drift metrics present in ``metrics``."""
    extra = sorted({k for m in metrics for k, v in m.items() if k.startswith(SERIES_PREFIXES) and k not in SERIES
                    and isinstance(v, (int, float)) and not isinstance(v, bool)})
    return [*SERIES, *extra]


def distribution(ref: ColumnSummary, cur: ColumnSummary | None) -> dict[str, Any]:
    """Reference and current shares on shared bins (numeric) or the top categories."""
    import numpy as np

    if ref.kind == NUMERIC and ref.counts is None and ref.n_valid:
        lo = min(v for v in (ref.min, cur.min if cur and cur.n_valid else None) if v is not None)
        hi = max(v for v in (ref.max, cur.max if cur and cur.n_valid else None) if v is not None)
        edges = np.linspace(lo, hi if hi > lo else lo + 1, BINS + 1)

        def shares(s: ColumnSummary | None) -> list[float]:
            if s is None or not s.n_valid:
                return [0.0] * BINS
            return np.diff(np.concatenate([[0.0], s.cdf(edges[1:-1], "left"), [1.0]])).round(6).tolist()

        return {"kind": "numeric", "edges": edges.round(6).tolist(), "reference": shares(ref), "current": shares(cur)}
    r = ref.category_counts()
    c = cur.category_counts() if cur else {}
    if ref.kind == NUMERIC and len(set(r) | set(c)) > TOP_CATEGORIES:  # many counted numbers: bin them
        return _binned_counts(r, c, ref.n_valid, cur.n_valid if cur else 0)
    keys = sorted(set(r) | set(c), key=lambda k: -(r.get(k, 0) + c.get(k, 0)))[:TOP_CATEGORIES]
    if ref.kind == NUMERIC:  # few distinct numbers (counted): in numeric order, not by frequency
        keys.sort(key=_as_number)
    return {
        "kind": "categorical", "categories": keys,
        "reference": [round(r.get(k, 0) / max(ref.n_valid, 1), 6) for k in keys],
        "current": [round(c.get(k, 0) / max(cur.n_valid, 1), 6) if cur else 0.0 for k in keys],
    }


def _binned_counts(r: dict[str, int], c: dict[str, int], n_ref: int, n_cur: int) -> dict[str, Any]:
    """Counted numeric values (a summary keeps counts when a column has few distinct values)
    on ``BINS`` shared bins, as shares."""
    import numpy as np

    values = [_as_number(k) for k in (*r, *c) if math.isfinite(_as_number(k))]
    lo, hi = min(values), max(values)
    edges = np.linspace(lo, hi if hi > lo else lo + 1, BINS + 1)

    def shares(counts: dict[str, int], n: int) -> list[float]:
        keys = [k for k in counts if math.isfinite(_as_number(k))]
        hist, _ = np.histogram([_as_number(k) for k in keys], bins=edges, weights=[counts[k] for k in keys])
        return (hist / max(n, 1)).round(6).tolist()

    return {"kind": "numeric", "edges": edges.round(6).tolist(), "reference": shares(r, n_ref),
            "current": shares(c, n_cur)}


def _as_number(key: str) -> float:
    try:
        return float(key)
    except ValueError:
        return float("inf")


def drift_report_data(report: DriftReport, *, title: str = "drift report") -> dict[str, Any]:
    """The report document of a single comparison (no store needed)."""
    return _document(title, report.to_dict(), report.reference, report.current, [], {})


def report_data(tracker: Any, model: str, *, monitor: str | None = None, limit: int = 200,
                load_window: Callable[[str, str | None, int, int], Any] | None = None,
                prediction: str = "prediction", score: str | None = None,
                evaluation: int | None = None) -> dict[str, Any]:
    """The report document of ``model``: the newest evaluation's drift and distributions, and
    every stored evaluation's metrics over time, beside the model's offline metrics
    (``evaluation``: that evaluation's drift instead of the newest).

    With ``load_window(model, version, since_ms, until_ms)`` (the prediction-log reader the
    monitor uses) the document also holds the prediction drift of the newest window: its
    ``prediction`` column against the training labels, and its ``score`` column (positive-
    class scores) against the oldest stored window's — see :func:`prediction_data`.

    Example::

        data = report_data(tracker, "churn"); html = render_html(data)

    In remote mode (``tracker`` talks to a ``conveyor server``) the server builds the
    document from its stores and its own prediction log (``load_window`` is not sent).
    """
    if getattr(tracker, "http", None) is not None:
        from conveyor.monitoring._remote import remote_report

        return remote_report(tracker, model, monitor=monitor, limit=limit, prediction=prediction, score=score,
                             evaluation=evaluation)["data"]
    from conveyor.blobs import Digest
    from conveyor.errors import NotFound
    from conveyor.store import MonitoringRepo

    repo = MonitoringRepo()
    rows = tracker.store.query(lambda conn: repo.evaluations(conn, model=model, monitor=monitor, limit=limit),
                               what=f"reading the monitor evaluations of {model!r}")
    if not rows:
        raise NotFound("monitor evaluation of model", model, hint="run `conveyor monitor run` first")
    latest = next((r for r in rows if r.metrics.get("drift_report") and evaluation in (None, r.id)), None)
    if evaluation is not None and latest is None:
        raise NotFound("monitor evaluation with a drift report", str(evaluation), hint=f"of model {model}")
    reference = current = None
    drift: dict[str, Any] = {}
    if latest is not None:
        drift = latest.metrics["drift_report"]
        ref_digest = tracker.store.query(lambda conn: repo.get_reference(conn, drift.get("reference") or ""),
                                         what="reading a monitoring reference")
        if ref_digest and tracker.blobs.exists(Digest.parse(ref_digest)):
            reference = Summary.from_bytes(tracker.blobs.read_bytes(Digest.parse(ref_digest)))
        if latest.report_digest:
            current = Summary.from_bytes(tracker.blobs.read_bytes(Digest.parse(latest.report_digest)))
    keys = series_keys([r.metrics for r in rows])
    series = [
        {"id": r.id, "at": r.created_at, "window_end": r.window_end, "monitor": r.monitor,
         "version": r.model_version, "status": r.status, **{k: r.metrics.get(k) for k in keys}}
        for r in reversed(rows)
    ]
    title = f"monitoring report: {model}"
    document = _document(title, drift, reference, current, series, _offline(tracker, model, rows[0].model_version))
    if latest is not None and load_window is not None:
        document["prediction"] = prediction_data(latest, rows[-1], reference, load_window, drift,
                                                 prediction=prediction, score=score)
    if latest is not None and isinstance(latest.metrics.get("score_drift_report"), dict):
        document["score_drift"] = score_drift_data(tracker, model, latest.metrics["score_drift_report"])
    document["evaluation"] = None if latest is None else {
        "id": latest.id, "monitor": latest.monitor, "version": latest.model_version, "status": latest.status,
        "window_start": latest.window_start, "window_end": latest.window_end, "at": latest.created_at}
    return document


def score_drift_data(tracker: Any, model: str, report: dict[str, Any]) -> dict[str, Any]:
    """The evaluation's stored score drift (one verdict per score column, computed by the
    monitor from the served package's scores of reference rows and window rows), with the
    reference scores' distribution per column when their summary is stored. The window's
    scores are not stored, only their verdicts: ``current`` is None in the distributions."""
    from conveyor.blobs import Digest
    from conveyor.store import MonitoringRepo

    out = {**report, "distributions": {}}
    key = f"scores:{model}/{report.get('version')}:{report.get('reference')}"
    digest = tracker.store.query(lambda conn: MonitoringRepo().get_reference(conn, key),
                                 what="reading a monitoring reference")
    if digest and tracker.blobs.exists(Digest.parse(digest)):
        summary = Summary.from_bytes(tracker.blobs.read_bytes(Digest.parse(digest)))
        for c in report.get("columns") or []:
            if c.get("column") in summary.columns:
                dist = distribution(summary[c["column"]], summary[c["column"]])
                dist["current"] = None
                out["distributions"][c["column"]] = dist
    return out


def _stored(row: Any, verdict: dict[str, Any], log_rows: int) -> dict[str, Any] | None:
    """The evaluation's own prediction-drift verdict beside the one recomputed from the log;
    ``matches`` is False when the log's window is not what the monitor evaluated (e.g. the
    monitor was given the rows directly, or the log changed since). ``rows`` is how many rows
    the evaluation compared, ``log_rows`` how many the log holds for its window and version:
    what each of the two numbers was computed on."""
    value = row.metrics.get("prediction_drift_value")
    if value is None:
        return None
    mine = verdict.get("value")
    matches = mine is not None and abs(mine - value) <= 1e-9 + 1e-6 * abs(value)
    return {"value": value, "drifted": bool(row.metrics.get("prediction_drift")), "matches": matches,
            "rows": row.metrics.get("rows"), "log_rows": log_rows, "window_start": row.window_start,
            "window_end": row.window_end, "version": row.model_version}


def prediction_summary(data: dict[str, Any]) -> str | None:
    """One sentence on the report's prediction drift: what was compared, on which rows, and
    whether the evaluation stored the same number (None when the report has none)."""
    outputs = (data.get("prediction") or {}).get("outputs")
    if not outputs:
        return None
    verdict, stored = outputs["drift"], outputs.get("stored")

    def num(value: Any) -> str:
        return "—" if value is None else f"{value:.4g}"

    line = (f"prediction drift ({outputs['current']} vs {outputs['reference']}): {verdict.get('method')} "
            f"{num(verdict.get('value'))} on the {data['prediction']['rows']} rows the prediction log holds for the "
            "newest evaluation's window")
    if stored:
        line += ("; the evaluation stored the same" if stored["matches"] else
                 f"; the evaluation stored {num(stored['value'])}, computed on the {num(stored.get('rows'))} rows it "
                 "was given (other rows)")
    return line


def prediction_data(latest: Any, oldest: Any, reference: Summary | None, load_window: Callable[..., Any],
                    drift: dict[str, Any], *, prediction: str, score: str | None) -> dict[str, Any] | None:
    """Prediction drift of the evaluation ``latest`` (an ``EvaluationRow``), read back from
    the prediction log: the predicted values against the training labels (the comparison the
    monitor makes, so its verdict is the stored ``prediction_drift``), and positive-class
    scores against those of the ``oldest`` evaluation's window. None without a window."""
    from conveyor.monitoring._drift import compare
    from conveyor.monitoring._performance import _positive_scores
    from conveyor.monitoring._summary import summarize

    def window(row: Any) -> Any:
        if row.window_start is None or row.window_end is None:
            return None
        try:
            return load_window(row.model, row.model_version, row.window_start, row.window_end)
        except Exception:  # the prediction log is context here: the report stands without it
            log.warning("report: the prediction log of %s could not be read", row.model, exc_info=True)
            return None

    frame = window(latest)
    if frame is None or not len(frame):
        return None
    out: dict[str, Any] = {"column": prediction, "rows": len(frame), "outputs": None, "scores": None}
    target = (drift.get("label_drift") or {}).get("column")
    if prediction in frame and target and reference is not None and target in reference.columns:
        pred = summarize(frame[[prediction]].rename(columns={prediction: target}))
        if pred[target].kind == reference[target].kind:
            verdict = drift.get("prediction_drift") or asdict(
                compare(reference, pred, columns=[target]).column(target))
            out["outputs"] = {"reference": f"training labels ({target})", "current": "predictions",
                              "distribution": distribution(reference[target], pred[target]),
                              "drift": {**verdict, "column": prediction}, "stored": _stored(latest, verdict, len(frame))}
    if score and score in frame and oldest.id != latest.id:
        first = window(oldest)
        now_scores, then_scores = _positive_scores(frame[score]), (
            _positive_scores(first[score]) if first is not None and score in first else None)
        if now_scores is not None and then_scores is not None and len(then_scores):
            import pandas as pd

            ref_s = summarize(pd.DataFrame({score: pd.Series(then_scores, dtype=float)}))
            cur_s = summarize(pd.DataFrame({score: pd.Series(now_scores, dtype=float)}))
            verdict = asdict(compare(ref_s, cur_s, columns=[score]).column(score))
            out["scores"] = {"reference": f"scores of the first window (evaluation {oldest.id})",
                             "current": "scores of this window", "distribution": distribution(ref_s[score],
                                                                                                cur_s[score]),
                             "drift": verdict}
    return out if out["outputs"] or out["scores"] else None


def _offline(tracker: Any, model: str, version: str | None) -> dict[str, float]:
    if version is None:
        return {}
    try:
        from conveyor.registry import Registry

        mv = Registry(tracker).get_version(model, int(version))
        return dict(tracker.get_run(mv.run_id).metrics) if mv.run_id else {}
    except Exception:  # offline metrics are context; their absence must not break the report
        return {}


def _document(title: str, drift: dict[str, Any], reference: Summary | None, current: Summary | None,
              series: list[dict[str, Any]], offline: dict[str, float]) -> dict[str, Any]:
    plots = {}
    if reference is not None:
        for name in list(reference.columns)[:MAX_PLOTS]:
            cur = current.columns.get(name) if current is not None else None
            plots[name] = distribution(reference[name], cur)
    return {"title": title, "drift": drift, "distributions": plots, "series": series, "offline": offline}


