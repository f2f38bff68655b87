"""Runs as a pandas DataFrame (pandas is imported only here, and only when asked)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from conveyor.entities import Run

if TYPE_CHECKING:
    import pandas as pd

BASE_COLUMNS = [
    "run_id",
    "experiment",
    "name",
    "status",
    "start_time",
    "end_time",
    "duration_s",
    "parent_id",
    "user",
    "git_commit",
]


def runs_frame(runs: Sequence[Run]) -> pd.DataFrame:
    import pandas as pd

    metric_keys = sorted({k for r in runs for k in r.metrics})
    param_keys = sorted({k for r in runs for k in r.params})
    tag_keys = sorted({k for r in runs for k in r.tags})
    rows = []
    for run in runs:
        row: dict[str, object] = {
            "run_id": run.id,
            "experiment": run.experiment,
            "name": run.name,
            "status": run.status.value,
            "start_time": run.start_time,
            "end_time": run.end_time,
            "duration_s": run.duration_s,
            "parent_id": run.parent_id,
            "user": run.user,
            "git_commit": run.git_commit,
        }
        row.update({f"metrics.{k}": run.metrics.get(k) for k in metric_keys})
        row.update({f"params.{k}": run.params.get(k) for k in param_keys})
        row.update({f"tags.{k}": run.tags.get(k) for k in tag_keys})
        rows.append(row)
    columns = (
        BASE_COLUMNS
        + [f"metrics.{k}" for k in metric_keys]
        + [f"params.{k}" for k in param_keys]
        + [f"tags.{k}" for k in tag_keys]
    )
    frame = pd.DataFrame(rows, columns=columns)
    for column in ("start_time", "end_time"):
        frame[column] = pd.to_datetime(frame[column], unit="ms", utc=True)
    for key in metric_keys:
        frame[f"metrics.{key}"] = frame[f"metrics.{key}"].astype("float64")
    return frame
