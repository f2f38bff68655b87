"""Compare N runs: a diff table that highlights what differs, overlaid metric curves,
parallel coordinates of params → a metric, and a param-vs-metric scatter.

The URL holds the selection: ``/compare?run=ID&run=ID…&metric=KEY&x=PARAM&only=diff``.
The parallel coordinates and the scatter are SVG drawn here on the server (each run's line
or point carries a ``<title>`` with its values, shown on hover and read by screen readers);
the curves are the run page's canvas charts with one series per run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from conveyor.errors import InvalidInput, NotFound
from conveyor.ui._access import require
from conveyor.ui._render import render

#: The most runs one comparison shows.
MAX_RUNS = 50
PALETTE = ["#0b57d0", "#d93025", "#188038", "#e37400", "#8430ce", "#007b83", "#b80672", "#5f6368", "#9e6a03", "#1967d2"]


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 12) for i in range(int((hi - first) / step + 1e-9) + 1)]


def _label(value: float) -> str:
    return f"{value:.4g}"


@dataclass
class Axis:
    """One axis of a chart: numeric (a linear scale) or categorical (evenly spaced values)."""

    name: str
    values: list[Any]

    def __post_init__(self) -> None:
        numbers = [_float(v) for v in self.values if v is not None]
        self.numeric = bool(numbers) and all(n is not None for n in numbers)
        if self.numeric:
            present = [n for n in numbers if n is not None]
            self.lo, self.hi = min(present), max(present)
            if self.lo == self.hi:
                self.lo, self.hi = self.lo - 1, self.hi + 1
            margin = (self.hi - self.lo) * 0.06  # points on the edge stay inside the frame
            self.lo, self.hi = self.lo - margin, self.hi + margin
            self.ticks = [(t, _label(t)) for t in _ticks(self.lo, self.hi)]
        else:
            self.categories = sorted({str(v) for v in self.values if v is not None})
            self.ticks = [(c, c) for c in self.categories]

    def fraction(self, value: Any) -> float | None:
        """0..1 along the axis, None for a missing value."""
        if value is None:
            return None
        if self.numeric:
            number = _float(value)
            return None if number is None else (number - self.lo) / (self.hi - self.lo)
        index = self.categories.index(str(value))
        return 0.5 if len(self.categories) == 1 else 0.06 + 0.88 * index / (len(self.categories) - 1)


def _parallel(runs: list[Any], params: list[str], metric: str | None) -> dict[str, Any] | None:
    names = [f"params.{p}" for p in params] + ([f"metrics.{metric}"] if metric else [])
    if len(names) < 2:
        return None
    axes = []
    for name in names:
        kind, _, key = name.partition(".")
        axes.append(Axis(name, [(r.params if kind == "params" else r.metrics).get(key) for r in runs]))
    width, height, top, bottom, left, right = 900, 340, 30, 40, 60, 60
    step = (width - left - right) / (len(axes) - 1)
    out_axes = []
    for i, axis in enumerate(axes):
        x = left + i * step
        ticks = [(top + (1 - (axis.fraction(v) or 0)) * (height - top - bottom), text) for v, text in axis.ticks]
        out_axes.append({"x": x, "name": axis.name, "ticks": ticks})
    lines = []
    for k, run in enumerate(runs):
        points = []
        for i, axis in enumerate(axes):
            kind, _, key = axis.name.partition(".")
            f = axis.fraction((run.params if kind == "params" else run.metrics).get(key))
            if f is not None:
                points.append((left + i * step, top + (1 - f) * (height - top - bottom)))
        title = f"{run.name or run.id[:12]}: " + ", ".join(
            f"{a.name}={(r.params if a.name.startswith('params.') else r.metrics).get(a.name.partition('.')[2], '–')}"
            for a in axes for r in [run])
        lines.append({"points": " ".join(f"{x:.1f},{y:.1f}" for x, y in points), "color": PALETTE[k % len(PALETTE)],
                      "title": title})
    return {"width": width, "height": height, "axes": out_axes, "lines": lines, "top": top, "bottom": height - bottom}


def _scatter(runs: list[Any], param: str | None, metric: str | None) -> dict[str, Any] | None:
    if not param or not metric:
        return None
    xs = Axis(f"params.{param}", [r.params.get(param) for r in runs])
    ys = Axis(f"metrics.{metric}", [r.metrics.get(metric) for r in runs])
    if not ys.numeric:
        return None
    width, height, top, bottom, left, right = 560, 340, 20, 50, 70, 20
    pw, ph = width - left - right, height - top - bottom
    points = []
    for k, run in enumerate(runs):
        fx, fy = xs.fraction(run.params.get(param)), ys.fraction(run.metrics.get(metric))
        if fx is None or fy is None:
            continue
        points.append({"x": left + fx * pw, "y": top + (1 - fy) * ph, "color": PALETTE[k % len(PALETTE)],
                       "title": f"{run.name or run.id[:12]}: {param}={run.params.get(param)}, {metric}={_label(run.metrics[metric])}"})
    return {
        "width": width, "height": height, "left": left, "top": top, "right": width - right, "bottom": top + ph,
        "xticks": [(left + (xs.fraction(v) or 0) * pw, t) for v, t in xs.ticks],
        "yticks": [(top + (1 - (ys.fraction(v) or 0)) * ph, t) for v, t in ys.ticks],
        "xlabel": xs.name, "ylabel": ys.name, "points": points,
    }


def compare_page(request: Request) -> Response:
    tracker = request.app.state.tracker
    ids = list(dict.fromkeys(i for i in request.query_params.getlist("run") if i))
    if len(ids) > MAX_RUNS:
        raise InvalidInput(f"{len(ids)} runs are more than one comparison shows ({MAX_RUNS})", field="run",
                           value=len(ids), hint="pick fewer runs")
    runs = []
    for run_id in ids:
        try:
            run = tracker.get_run(run_id)
        except NotFound:
            raise NotFound("run", run_id, hint="one of the runs to compare does not exist") from None
        require(request, "experiment", str(run.experiment_id))
        runs.append(run)
    only = request.query_params.get("only") == "diff"
    params = sorted({k for r in runs for k in r.params})
    metrics = sorted({k for r in runs for k in r.metrics})
    tags = sorted({k for r in runs for k in r.tags if not k.startswith("conveyor.")})
    rows: list[tuple[str, str, list[Any], bool]] = []
    attributes = [("Experiment", lambda r: r.experiment), ("Status", lambda r: r.status.value),
                  ("Duration (s)", lambda r: None if r.duration_s is None else round(r.duration_s, 1)),
                  ("Git commit", lambda r: r.git_commit)]
    for label, get in attributes:
        values = [get(r) for r in runs]
        rows.append(("attribute", label, values, len({str(v) for v in values}) > 1))
    for kind, keys in (("params", params), ("metrics", metrics), ("tags", tags)):
        for key in keys:
            values = [{"params": r.params, "metrics": r.metrics, "tags": r.tags}[kind].get(key) for r in runs]
            rows.append((kind, key, values, len({repr(v) for v in values}) > 1))
    if only:
        rows = [row for row in rows if row[3]]
    numeric_metrics = [m for m in metrics if any(_float(r.metrics.get(m)) is not None for r in runs)]
    metric = request.query_params.get("metric") or (numeric_metrics[0] if numeric_metrics else None)
    if metric is not None and metric not in metrics:
        raise InvalidInput(f"none of these runs has metric {metric!r}", field="metric", value=metric,
                           hint="pick one of: " + ", ".join(metrics))
    varying = [p for p in params if len({r.params.get(p) for r in runs}) > 1] or params
    x_param = request.query_params.get("x") or (varying[0] if varying else None)
    if x_param is not None and x_param not in params:
        raise InvalidInput(f"none of these runs has param {x_param!r}", field="x", value=x_param,
                           hint="pick one of: " + ", ".join(params))
    colors = [PALETTE[k % len(PALETTE)] for k in range(len(runs))]
    data = {"runs": [{"id": r.id, "name": r.name or r.id[:12], "color": c, "metrics": sorted(r.metrics)}
                     for r, c in zip(runs, colors)], "metrics": metrics}
    return render(
        request, "compare.html", title=f"Compare {len(runs)} runs", runs=runs, colors=colors, rows=rows, only=only,
        metrics=metrics, params=params, metric=metric, x_param=x_param, ids=ids,
        parallel=_parallel(runs, varying[:8], metric) if len(runs) >= 2 else None,
        scatter=_scatter(runs, x_param, metric) if len(runs) >= 2 else None, data=data,
    )


routes = [Route("/compare", compare_page, methods=["GET"])]
