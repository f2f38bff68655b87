"""Monitoring reports: a JSON document and a self-contained HTML page.

The page embeds only summaries — per-column distributions binned from the stored
reference and window summaries, the drift table, data quality and metrics over time —
as inline SVG drawn here: no CDN, no script, no raw rows, so a report over 100 columns is
tens of kilobytes, not the data set (evidently#15).
"""

from __future__ import annotations

import html
import math
from typing import Any

from conveyor.monitoring._columns import NUMERIC
from conveyor.monitoring._drift import DriftReport
from conveyor.monitoring._summary import ColumnSummary, Summary

BINS = 30
TOP_CATEGORIES = 15
MAX_PLOTS = 60
SERIES = ("drift_share", "accuracy", "f1", "roc_auc", "mae", "rmse", "p95_latency_ms", "rows")


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
    keys = sorted(set(r) | set(c), key=lambda k: -(r.get(k, 0) + c.get(k, 0)))[:TOP_CATEGORIES]
    return {
        "kind": "categorical", "categories": keys,
        "reference": [round(r.get(k, 0) / max(ref.n_valid, 1), 6) for k in keys],
        "current": [round(c.get(k, 0) / max(cur.n_valid, 1), 6) if cur else 0.0 for k in keys],
    }


def drift_report_data(report: DriftReport, *, title: str = "drift report") -> dict[str, Any]:
    """The report document of a single comparison (no store needed)."""
    return _document(title, report.to_dict(), report.reference, report.current, [], {})


def report_data(tracker: Any, model: str, *, monitor: str | None = None, limit: int = 200) -> dict[str, Any]:
    """The report document of ``model``: the newest evaluation's drift and distributions, and
    every stored evaluation's metrics over time, beside the model's offline metrics.

    Example::

        data = report_data(tracker, "churn"); html = render_html(data)
    """
    from conveyor.blobs import Digest
    from conveyor.errors import NotFound
    from conveyor.store import MonitoringRepo

    repo = MonitoringRepo()
    with tracker.store.read() as conn:
        rows = repo.evaluations(conn, model=model, monitor=monitor, limit=limit)
    if not rows:
        raise NotFound("monitor evaluation of model", model, hint="run `conveyor monitor run` first")
    latest = next((r for r in rows if r.metrics.get("drift_report")), None)
    reference = current = None
    drift: dict[str, Any] = {}
    if latest is not None:
        drift = latest.metrics["drift_report"]
        with tracker.store.read() as conn:
            ref_digest = repo.get_reference(conn, drift.get("reference") or "")
        if ref_digest and tracker.blobs.exists(Digest.parse(ref_digest)):
            reference = Summary.from_bytes(tracker.blobs.read_bytes(Digest.parse(ref_digest)))
        if latest.report_digest:
            current = Summary.from_bytes(tracker.blobs.read_bytes(Digest.parse(latest.report_digest)))
    series = [
        {"at": r.created_at, "monitor": r.monitor, "version": r.model_version, "status": r.status,
         **{k: r.metrics.get(k) for k in SERIES}}
        for r in reversed(rows)
    ]
    title = f"monitoring report: {model}"
    return _document(title, drift, reference, current, series, _offline(tracker, model, rows[0].model_version))


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


# -- HTML -------------------------------------------------------------------------------------------
_CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse}
td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left}.drift{color:#b00020;font-weight:600}
.grid{display:flex;flex-wrap:wrap;gap:12px}.card{border:1px solid #ddd;padding:6px}.muted{color:#777}
.ref{fill:#9e9e9e}.cur{fill:#1e88e5}"""


def render_html(data: dict[str, Any]) -> str:
    """A self-contained HTML page (inline CSS and SVG, nothing fetched) of a report document."""
    e = html.escape
    drift = data.get("drift") or {}
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(data['title'])}</title>",
             f"<style>{_CSS}</style></head><body><h1>{e(data['title'])}</h1>"]
    if drift:
        share = drift.get("drift_share")
        parts.append(
            f"<p>reference <b>{e(str(drift.get('reference') or '—'))}</b> ({drift.get('n_reference')} rows) vs "
            f"current window ({drift.get('n_current')} rows): <b>{drift.get('n_drifted')}</b> of "
            f"{drift.get('n_features')} features drifted (share {_num(share)}; data-set drift "
            f"{'<span class=drift>yes</span>' if drift.get('dataset_drift') else 'no'}).</p>")
        parts.append("<h2>Drift</h2><table><tr><th>column</th><th>role</th><th>method</th><th>value</th>"
                     "<th>threshold</th><th>drifted</th><th>missing</th><th>note</th></tr>")
        quality = (drift.get("quality") or {}).get("columns", {})
        for c in drift.get("columns", []):
            q = quality.get(c["column"], {})
            flag = "<span class=drift>drift</span>" if c["drifted"] else ("—" if c["status"] != "ok" else "no")
            parts.append(
                f"<tr><td>{e(c['column'])}</td><td>{e(c['role'])}</td><td>{e(c['method'])}"
                f"{'' if c['exact'] else ' <span class=muted>(sketch)</span>'}</td><td>{_num(c['value'])}</td>"
                f"<td>{_num(c['threshold'])}</td><td>{flag}</td><td>{_num(q.get('missing_rate'))}</td>"
                f"<td class=muted>{e(c.get('note') or '')}</td></tr>")
        parts.append("</table>")
    if data.get("distributions"):
        parts.append("<h2>Distributions</h2><p class=muted>grey: reference, blue: current window</p><div class=grid>")
        for name, dist in data["distributions"].items():
            parts.append(f"<div class=card><div>{e(name)}</div>{_bars(dist)}</div>")
        parts.append("</div>")
    if data.get("series"):
        parts.append("<h2>Over time</h2><div class=grid>")
        for key in SERIES:
            points = [(s["at"], s[key]) for s in data["series"] if isinstance(s.get(key), (int, float))]
            if points:
                offline = data.get("offline", {}).get(key)
                parts.append(f"<div class=card><div>{e(key)}"
                             f"{f' <span class=muted>(offline {_num(offline)})</span>' if offline is not None else ''}"
                             f"</div>{_line(points, offline)}</div>")
        parts.append("</div>")
    parts.append("</body></html>")
    return "".join(parts)


def _bars(dist: dict[str, Any], width: int = 240, height: int = 90) -> str:
    ref, cur = dist["reference"], dist["current"]
    n = max(len(ref), 1)
    top = max([*ref, *cur, 1e-9])
    step = width / n
    out = [f"<svg width='{width}' height='{height}' viewBox='0 0 {width} {height}' role='img'>"]
    for i, (r, c) in enumerate(zip(ref, cur)):
        for j, (value, cls) in enumerate(((r, "ref"), (c, "cur"))):
            h = (value / top) * (height - 4)
            out.append(f"<rect class={cls} x='{i * step + j * step / 2:.1f}' y='{height - h:.1f}' "
                       f"width='{max(step / 2 - 0.5, 0.5):.1f}' height='{h:.1f}'/>")
    out.append("</svg>")
    return "".join(out)


def _line(points: list[tuple[int, float]], offline: float | None, width: int = 280, height: int = 90) -> str:
    xs = [p[0] for p in points]
    ys = [p[1] for p in points] + ([offline] if offline is not None else [])
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1

    def xy(x: float, y: float) -> str:
        return f"{4 + (x - x0) / (x1 - x0) * (width - 8):.1f},{height - 4 - (y - y0) / (y1 - y0) * (height - 8):.1f}"

    path = " ".join(xy(x, y) for x, y in points)
    out = [f"<svg width='{width}' height='{height}' viewBox='0 0 {width} {height}' role='img'>"]
    if offline is not None:
        out.append(f"<polyline points='{xy(x0, offline)} {xy(x1, offline)}' stroke='#9e9e9e' "
                   "stroke-dasharray='4 3' fill='none'/>")
    out.append(f"<polyline points='{path}' stroke='#1e88e5' stroke-width='2' fill='none'/></svg>")
    return "".join(out)


def _num(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.4g}" if isinstance(value, (int, float)) else html.escape(str(value))
