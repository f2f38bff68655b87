"""Sweeps: one pipeline run per point of a parameter grid, in parallel, best first."""

from __future__ import annotations

import itertools
import math
import uuid
from collections.abc import Mapping, Sequence
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

    @property
    def best(self) -> tuple[Mapping[str, Any], PipelineResult, float | None] | None:
        return self.points[0] if self.points and self.points[0][2] is not None else None


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
    maximize: bool = False,
    executor: str | Executor = "local",
    ray_address: str | None = None,
    cache: bool = True,
    tracker: Any = None,
    max_workers: int | None = None,
    parallel: int | None = None,
    on_event: EventHook | None = None,
) -> SweepResult:
    """Run ``target`` once per grid point (in parallel) and rank the runs by ``metric``
    (a metric a ``metrics=True`` step returns).

    Example::

        result = sweep(train, {"C": [0.1, 1, 10], "penalty": ["l1", "l2"]}, metric="f1", maximize=True)
        params, run, f1 = result.best
    """
    points = grid_points(grid)
    for point in points:
        target(**point)  # bad names, cycles and missing inputs fail before anything runs
    if tracker is None:
        from conveyor.tracking import get_tracker

        tracker = get_tracker()
    engine = executor if not isinstance(executor, str) else make_executor(
        executor, ray_address=ray_address, max_workers=max_workers,
        settings=getattr(tracker, "project_settings", None),
    )
    sweep_id = uuid.uuid4().hex[:12]

    def one(point: dict[str, Any]) -> PipelineResult:
        label = ",".join(f"{k}={v}" for k, v in point.items())
        hook = (lambda node, status, detail: on_event(f"[{label}] {node}", status, detail)) if on_event else None
        return run(target, params=point, executor=engine, cache=cache, tracker=tracker, on_event=hook,
                   tags={"conveyor.sweep": sweep_id})

    workers = max(1, min(len(points), parallel or engine.slots))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="conveyor-sweep") as pool:
        results = list(pool.map(one, points))
    scored = []
    for point, result in zip(points, results, strict=True):
        value = tracker.get_run(result.run_id).metrics.get(metric)
        scored.append((point, result, None if value is None or math.isnan(value) else float(value)))
    sign = -1.0 if maximize else 1.0
    scored.sort(key=lambda p: (p[2] is None, sign * p[2] if p[2] is not None else 0.0))
    return SweepResult(sweep_id, metric, maximize, tuple(scored))
