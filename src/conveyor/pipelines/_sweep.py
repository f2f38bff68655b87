"""Sweeps: one pipeline run per point of a parameter grid, in parallel, best first.

A sweep must know whether its metric is better high or low: given (``maximize=``) or
inferred from well-known names (:func:`direction`); an unknown name without a direction is
an error rather than a guess (minimizing an accuracy picks the worst model).
"""

from __future__ import annotations

import itertools
import math
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from conveyor.errors import InvalidInput
from conveyor.pipelines._dag import Pipeline
from conveyor.pipelines._executors import Executor, make_executor
from conveyor.pipelines._runner import EventHook, PipelineResult, run


@dataclass(frozen=True)
class SweepResult:
    """Every point of the grid with its pipeline run and metric; ``points`` is best first."""

    sweep_id: str
    metric: str
    maximize: bool
    points: tuple[tuple[Mapping[str, Any], PipelineResult, float | None], ...]
    #: "given" (the caller said) or "inferred" (from the metric's name)
    direction_source: str = "given"

    @property
    def best(self) -> tuple[Mapping[str, Any], PipelineResult, float | None] | None:
        return self.points[0] if self.points and self.points[0][2] is not None else None


_MAXIMIZE = re.compile(r"(accuracy|acc|f\d*|f\d+_\w+|f1\w*|fbeta\w*|r2|auc|roc_auc\w*|pr_auc|average_precision|ap|"
                       r"precision\w*|recall\w*|balanced_accuracy|jaccard\w*|iou|map|ndcg\w*|mcc|kappa|"
                       r"explained_variance|score)")
_MINIMIZE = re.compile(r"(\w*loss\w*|rmse|mse|mae|mape|smape|rmsle|msle|error\w*|\w*_error|brier\w*|"
                       r"log_?loss|perplexity|wer|cer|latency\w*|ece)")
_PREFIX = re.compile(r"^(val|valid|validation|test|eval|train|holdout|cv|mean|avg)[_./-]")


def direction(metric: str, maximize: bool | None = None) -> tuple[bool, str]:
    """``(maximize, "given" | "inferred")`` for ``metric``; ``InvalidInput`` when it is
    neither given nor a well-known name (accuracy, f1*, r2, auc … are maximized; loss,
    rmse, mae … minimized; prefixes such as ``val_`` or ``test_`` are ignored)."""
    if maximize is not None:
        return bool(maximize), "given"
    name = metric.lower()
    while _PREFIX.match(name):
        name = _PREFIX.sub("", name, count=1)
    if _MINIMIZE.fullmatch(name):
        return False, "inferred"
    if _MAXIMIZE.fullmatch(name):
        return True, "inferred"
    raise InvalidInput(
        f"cannot tell whether metric {metric!r} is better high or low", field="metric", value=metric,
        hint="say it: --maximize or --minimize (maximize=True or False); it is inferred only for well-known "
             "names such as accuracy, f1, r2, auc (maximize) and loss, rmse, mae (minimize)",
    )


def grid_points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """The cartesian product of the grid, in a stable order."""
    for key, values in grid.items():
        if not values:
            raise InvalidInput(f"grid parameter {key!r} has no values", field=key, hint="give at least one value")
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))]


def sweep(
    target: Pipeline,
    grid: Mapping[str, Sequence[Any]],
    *,
    metric: str,
    maximize: bool | None = None,
    executor: str | Executor = "local",
    ray_address: str | None = None,
    cache: bool = True,
    tracker: Any = None,
    max_workers: int | None = None,
    parallel: int | None = None,
    on_event: EventHook | None = None,
    on_point: Callable[[Mapping[str, Any], PipelineResult], None] | None = None,
) -> SweepResult:
    """Run ``target`` once per grid point (in parallel) and rank the runs by ``metric``
    (a metric of the pipeline run: returned by a ``metrics=True`` step or the declared
    evaluation step). ``maximize=None`` infers the direction from the name (see
    :func:`direction`). ``on_point(params, result)`` is called as each point finishes.
    ``result.best[1].candidate`` is the best point's candidate model, when the pipeline
    declares one (``conveyor ci check --candidate runs:/<its run id>`` gates it).

    Example::

        result = sweep(train, {"C": [0.1, 1, 10], "penalty": ["l1", "l2"]}, metric="f1", maximize=True)
        params, run, f1 = result.best
    """
    maximize, source = direction(metric, maximize)
    points = grid_points(grid)
    for point in points:
        target(**point)  # bad names, cycles and missing inputs fail before anything runs
    if tracker is None:
        from conveyor.tracking import get_tracker

        tracker = get_tracker()
    from conveyor.pipelines import _remote

    if isinstance(executor, str):
        from conveyor.pipelines._runner import heavy_modules

        engine = make_executor(executor, ray_address=ray_address, max_workers=max_workers,
                               preload=heavy_modules(target(**points[0])),
                               settings=getattr(tracker, "project_settings", None),
                               remote=_remote.is_remote(tracker))
    else:
        engine = executor
    sweep_id = uuid.uuid4().hex[:12]

    def one(point: dict[str, Any]) -> PipelineResult:
        label = ",".join(f"{k}={v}" for k, v in point.items())
        hook = (lambda node, status, detail: on_event(f"[{label}] {node}", status, detail)) if on_event else None
        result = run(target, params=point, executor=engine, cache=cache, tracker=tracker, on_event=hook,
                     tags={"conveyor.sweep": sweep_id})
        if on_point is not None:
            on_point(point, result)
        return result

    # twice the step slots: one point's coordinator work (metadata writes, cache checks)
    # overlaps another's steps; the executor still runs at most ``slots`` steps at once
    workers = max(1, min(len(points), parallel or 2 * engine.slots))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="conveyor-sweep") as pool:
        results = list(pool.map(one, points))
    scored = []
    for point, result in zip(points, results, strict=True):
        value = tracker.get_run(result.run_id).metrics.get(metric)
        scored.append((point, result, None if value is None or math.isnan(value) else float(value)))
    sign = -1.0 if maximize else 1.0
    scored.sort(key=lambda p: (p[2] is None, sign * p[2] if p[2] is not None else 0.0))
    return SweepResult(sweep_id, metric, maximize, tuple(scored), source)
