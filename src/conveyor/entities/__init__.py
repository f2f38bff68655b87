"""Immutable value objects that cross conveyor's layers (runs, metrics, artifacts…).

They are converted to rows or JSON only at the edges. This package imports nothing
from conveyor: it is a leaf.
"""

from conveyor.entities._models import DTYPES, ColumnSpec, ModelRef, Predictor, Signature, columns
from conveyor.entities._tracking import (
    Artifact,
    Experiment,
    Metric,
    Run,
    RunStatus,
    ms_to_datetime,
    now_ms,
)

__all__ = [
    "Artifact",
    "ColumnSpec",
    "DTYPES",
    "Experiment",
    "Metric",
    "ModelRef",
    "Predictor",
    "Run",
    "RunStatus",
    "Signature",
    "columns",
    "ms_to_datetime",
    "now_ms",
]
