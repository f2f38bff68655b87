"""``/api/v1/lineage``: what lies upstream and downstream of any node — a run, an artifact,
a data set version, a model version, a pipeline step or a commit — as ``conveyor lineage``
prints it. Permission: ``read`` on the root's own resource (the data set, the model, the
run's experiment; a commit: the server).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request

from conveyor.server.api import _deps
from conveyor.server.api._listing import Lineage, lineage_of

router = APIRouter(tags=["lineage"])


def _authorize(request: Request, ref: str) -> None:
    from conveyor.data import parse_dataset_ref, parse_node
    from conveyor.registry import parse_model_uri

    if ref.startswith("data:"):
        _deps.authorize(request, "data", parse_dataset_ref(ref).name, "read")
        return
    if ref.startswith("models:"):
        _deps.authorize(request, "model", parse_model_uri(ref).name, "read")
        return
    node = parse_node(ref)
    if node.kind in ("run", "artifact"):
        tracker = _deps.tracker(request)
        run_id = node.id.partition("/")[0]
        experiment = tracker.store.query(lambda conn: tracker.store.runs.get(conn, run_id),
                                         what=f"reading run {run_id}").experiment_id
        _deps.authorize(request, "experiment", str(experiment), "read")
        return
    _deps.authorize(request, "server", None, "read")


@router.get("/lineage", response_model=Lineage, summary="Upstream and downstream edges of a node")
def lineage(
    request: Request,
    ref: str = Query(..., min_length=1, max_length=1024,
                     description="runs:/ID, runs:/ID/PATH, data:/NAME@V, models:/NAME/V or KIND:ID."),
    direction: Literal["up", "down", "both"] = Query("both"), depth: int | None = Query(None, ge=1, le=50),
) -> Any:
    _authorize(request, ref)
    return lineage_of(_deps.tracker(request), ref, direction, depth)
