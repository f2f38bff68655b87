"""Lineage of registered versions through ``conveyor.data``: the data set versions the run
read (edges into the run), and the edge run → model version recorded at registration.

A run can also name its inputs in the ``conveyor.data.inputs`` tag (comma-separated
``data:/name@version`` URIs), for data read outside ``conveyor.data``.
"""

from __future__ import annotations

from typing import Any

from conveyor.errors import ConveyorError

INPUTS_TAG = "conveyor.data.inputs"


def run_data_inputs(tracker: Any, run_id: str) -> tuple[str, ...]:
    """``data:/…`` URIs of the data set versions run ``run_id`` read (may be empty)."""
    from conveyor.data import lineage_graph

    found: list[str] = []
    try:
        graph = lineage_graph(tracker, f"runs:/{run_id}", direction="up", depth=1)
        found = sorted({str(e.upstream) for e in graph.upstream if e.upstream.kind == "dataset_version"})
    except ConveyorError:  # no lineage recorded for this run
        found = []
    tag = tracker.get_run(run_id).tags.get(INPUTS_TAG, "")
    for part in tag.split(","):
        if part.strip() and part.strip() not in found:
            found.append(part.strip())
    return tuple(found)


def record_version_lineage(tracker: Any, run_id: str | None, name: str, version: int) -> None:
    """The lineage edge run → model version, so ``conveyor lineage`` walks from data to models."""
    from conveyor.data import record_lineage

    if run_id:
        record_lineage(tracker, f"runs:/{run_id}", f"models:/{name}/{version}", "registered_as", run_id=run_id)
