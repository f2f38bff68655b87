"""Experiment tracking: runs with params, metrics, tags, artifacts and their context.

The module-level functions are what ``import conveyor`` offers; ``Tracker`` is the explicit
API bound to a given store (for servers, tests, and several stores in one process).
"""

from conveyor.tracking._autolog import autolog
from conveyor.tracking._fluent import (
    ActiveRun,
    active_run,
    end_run,
    flush,
    get_metric_history,
    get_run,
    get_tracker,
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
    set_tracker,
    start_run,
)
from conveyor.tracking._downsample import MAX_BUCKETS, Series, downsample, extremes
from conveyor.tracking._tracker import Tracker
from conveyor.tracking._uris import RunURI, parse_run_uri

__all__ = [
    "ActiveRun",
    "MAX_BUCKETS",
    "RunURI",
    "Series",
    "Tracker",
    "active_run",
    "autolog",
    "downsample",
    "end_run",
    "extremes",
    "flush",
    "get_metric_history",
    "get_run",
    "get_tracker",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_text",
    "parse_run_uri",
    "search_runs",
    "set_experiment",
    "set_tag",
    "set_tags",
    "set_tracker",
    "start_run",
]
