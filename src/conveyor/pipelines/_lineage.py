"""Lineage of step executions, recorded through ``conveyor.data``'s lineage API.

Edges: each input artifact (``runs:/<upstream step run>/outputs/<name>``) → the step's run,
relation ``input``. The step's own outputs are artifacts of its run, which the lineage walk
already links (an artifact is produced by its run). ``conveyor.data`` is a sibling layer
built in parallel; while it is absent this records nothing (``HOOK``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def record_step(tracker: Any, run_id: str, upstream: Mapping[str, tuple[str | None, str]]) -> None:
    """Record ``upstream`` outputs as inputs of the step run ``run_id``."""
    if not upstream:
        return
    try:
        from conveyor.data._lineage import Edge, record_edges
        from conveyor.data._refs import parse_node
    except ImportError:  # HOOK: conveyor.data not installed yet; lineage is not recorded
        return
    edges = [
        Edge(parse_node(f"runs:/{up_run}/outputs/{output}"), parse_node(f"runs:/{run_id}"), "input", run_id=run_id)
        for up_run, output in upstream.values()
        if up_run
    ]
    with tracker.store.write() as conn:
        record_edges(conn, edges)
