"""Pipelines: Python steps as a cached DAG, run in local processes or on a Ray cluster.

Steps pass artifacts, not paths: what a step returns is written to the artifact store by
a materializer and handed to the next step as an object. A step is skipped when an earlier
finished execution has the same cache key (its code and the project code it calls, its
parameters, its inputs' digests, its packages' versions, its ``cache_version``) and that
execution's outputs still exist and verify.

Example::

    import conveyor

    @conveyor.step
    def load() -> dict: return {"x": [1, 2, 3]}

    @conveyor.step(metrics=True)
    def score(data: dict, scale: float = 1.0) -> dict: return {"total": scale * sum(data["x"])}

    @conveyor.pipeline
    def demo(scale: float = 1.0):
        score(load(), scale=scale)

    result = conveyor.pipelines.run(demo, params={"scale": 2.0})

The cache key covers the step's code, the project code it calls, and every module-level
value, closure cell and default argument that code reaches; a reached value with no stable
fingerprint (a lock, a client) makes the step run uncached, naming it, until it is passed
as a parameter or declared with ``@step(cache_exclude=("name",))``.

Inside a step, ``conveyor.log_metric/log_param/set_tag/log_artifact`` and
``conveyor.models.log`` log to the step's own run. ``@pipeline(candidate="train",
evaluation="evaluate")`` declares the pipeline's candidate model and the step whose metrics
evaluate it; ``train_candidate`` (and ``conveyor ci check --pipeline``, retraining) use it.
Local steps run in processes forked from a warm server that has already imported conveyor
and the libraries the steps import; each step is its own process.

``conveyor.toml`` table ``[pipelines]`` (all optional): ``executor`` ("local" or "ray"),
``ray_address`` ("host:port"), ``max_workers`` (int, default: the cores), ``experiment``
(default: the pipeline's name). Command-line options override them.
"""

from typing import TYPE_CHECKING, Any

from conveyor.pipelines._dag import Graph, Handle, Pipeline, Step, StepOptions, pipeline, step
from conveyor.pipelines._datasets import dataset
from conveyor.pipelines._materializers import (
    ENTRY_POINT_GROUP,
    Materializer,
    get_materializer,
    materializer_for,
    materializer_table,
    register_materializer,
)

if TYPE_CHECKING:
    from conveyor.pipelines._candidate import PipelineFailed, train_candidate
    from conveyor.pipelines._runner import PipelineResult, StepResult, run
    from conveyor.pipelines._settings import PipelineSettings
    from conveyor.pipelines._sweep import SweepResult, sweep

# Running needs the stores (SQLAlchemy, pydantic); defining steps must not, because every
# step module imports this package, in the caller and in each worker process.
_LAZY = {
    "PipelineFailed": "conveyor.pipelines._candidate",
    "train_candidate": "conveyor.pipelines._candidate",
    "PipelineResult": "conveyor.pipelines._runner",
    "StepResult": "conveyor.pipelines._runner",
    "run": "conveyor.pipelines._runner",
    "PipelineSettings": "conveyor.pipelines._settings",
    "SweepResult": "conveyor.pipelines._sweep",
    "sweep": "conveyor.pipelines._sweep",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'conveyor.pipelines' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "ENTRY_POINT_GROUP",
    "Graph",
    "Handle",
    "Materializer",
    "Pipeline",
    "PipelineFailed",
    "PipelineResult",
    "PipelineSettings",
    "Step",
    "StepOptions",
    "StepResult",
    "SweepResult",
    "dataset",
    "get_materializer",
    "materializer_for",
    "materializer_table",
    "pipeline",
    "register_materializer",
    "run",
    "step",
    "sweep",
    "train_candidate",
]
