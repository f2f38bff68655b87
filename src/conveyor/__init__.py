"""conveyor: the whole MLOps loop in one package.

    import conveyor

    with conveyor.start_run(experiment="iris"):
        conveyor.log_params({"C": 1.0})
        conveyor.log_metric("acc", 0.97)

Heavy modules (SQLAlchemy, pandas, scikit-learn) load on first use, not on import: the
names below resolve lazily.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

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
}
_LAZY = {name: "conveyor.tracking" for name in _TRACKING} | _ELSEWHERE

__all__ = sorted([*_LAZY, "__version__"])

if TYPE_CHECKING:
    from conveyor.errors import ConveyorError, NotFound
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
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'conveyor' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
