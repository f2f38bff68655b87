"""conveyor: the whole MLOps loop in one package.

    import conveyor

    with conveyor.start_run(experiment="iris"):
        conveyor.log_params({"C": 1.0})
        conveyor.log_metric("acc", 0.97)

    @conveyor.step
    def train(C: float) -> dict: ...

Sub-packages: conveyor.data, conveyor.pipelines, conveyor.models, conveyor.registry,
conveyor.gates, conveyor.serving, conveyor.monitoring, conveyor.ci.

Heavy modules (SQLAlchemy, pandas, scikit-learn) load on first use, not on import: the
names below resolve lazily.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from conveyor._version import __version__

_TRACKING = (
    "ActiveRun",
    "Tracker",
    "active_run",
    "autolog",
    "end_run",
    "flush",
    "get_metric_history",
    "get_run",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_text",
    "search_runs",
    "set_experiment",
    "set_tag",
    "set_tags",
    "start_run",
)
_ELSEWHERE = {
    "ConveyorError": "conveyor.errors",
    "NotFound": "conveyor.errors",
    "Settings": "conveyor.settings",
    "log_input": "conveyor.data",
    "pipeline": "conveyor.pipelines",
    "step": "conveyor.pipelines",
}
_LAZY = {name: "conveyor.tracking" for name in _TRACKING} | _ELSEWHERE
#: Documented sub-packages, reachable as attributes (``conveyor.data.add``) and imported on
#: first access, like the names above.
_SUBPACKAGES = frozenset(
    {"ci", "data", "entities", "errors", "gates", "models", "monitoring", "pipelines", "registry", "serving",
     "settings", "tracking"}
)

__all__ = sorted([*_LAZY, "__version__"])

if TYPE_CHECKING:
    from conveyor.data import log_input
    from conveyor.errors import ConveyorError, NotFound
    from conveyor.pipelines import pipeline, step
    from conveyor.settings import Settings
    from conveyor.tracking import (
        ActiveRun,
        Tracker,
        active_run,
        autolog,
        end_run,
        flush,
        get_metric_history,
        get_run,
        log_artifact,
        log_artifacts,
        log_dict,
        log_figure,
        log_metric,
        log_metrics,
        log_param,
        log_params,
        log_text,
        search_runs,
        set_experiment,
        set_tag,
        set_tags,
        start_run,
    )


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"conveyor.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'conveyor' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | _SUBPACKAGES)
