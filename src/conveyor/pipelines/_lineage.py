"""Lineage of pipeline runs, recorded through ``conveyor.data``'s lineage API.

Edges, relation ``input``: each input of a step (``runs:/<upstream step run>/outputs/<name>``
or a data set version ``data:/name@N``) → the step's run; each data set version a pipeline
reads → the pipeline run. A step's outputs are artifacts of its run, which the lineage walk
already links (an artifact is produced by its run), and runs link to their git commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def record_step(conn: Any, run_id: str, upstream: Sequence[str]) -> None:
    """Record every ``upstream`` node URI as an input of the step run ``run_id``, in the
    caller's transaction (``conn``)."""
    if not upstream:
        return
    from conveyor.data import record_lineage

    for ref in upstream:
        record_lineage(conn, ref, f"runs:/{run_id}", "input", run_id=run_id)


def record_inputs(tracker: Any, run_id: str, refs: Sequence[str]) -> None:
    """The data set versions a pipeline run reads, as inputs of that run."""
    from conveyor.data import log_input

    for ref in refs:
        log_input(ref, run_id, tracker=tracker)
