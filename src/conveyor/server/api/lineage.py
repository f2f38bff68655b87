"""``/api/v1/lineage``: what lies upstream and downstream of any node — a run, an artifact,
a data set version, a model version, a pipeline step or a commit — as ``conveyor lineage``
prints it. Permission: ``read`` on the root's own resource (the data set, the model, the
run's experiment; a commit: the server). ``POST /lineage/edges`` records an edge
(``conveyor.data.record_lineage`` in remote mode): ``read`` on the upstream node's resource,
``edit`` on the downstream node's (and on the run's experiment when ``run_id`` is given).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field

from conveyor.errors import NotFound
from conveyor.server.api import _deps
from conveyor.server.api._listing import Lineage, lineage_of
from conveyor.server.api._models import RUN_ID, _Body, json_response, no_nul

router = APIRouter(tags=["lineage"])


def _authorize(request: Request, ref: str, level: _deps.Level = "read") -> None:
    from conveyor.data import parse_dataset_ref, parse_node
    from conveyor.registry import parse_model_uri

    if ref.startswith("data:"):
        _deps.authorize(request, "data", parse_dataset_ref(ref).name, level)
        return
    if ref.startswith("models:"):
        _deps.authorize(request, "model", parse_model_uri(ref).name, level)
        return
    node = parse_node(ref)
    if node.kind in ("run", "artifact"):
        tracker = _deps.tracker(request)
        run_id = node.id.partition("/")[0]
        def get(conn: Any) -> Any:
            try:
                return tracker.store.runs.get(conn, run_id)
            except NotFound:  # a run id no run has (yet): only the server's own rights cover it
                return None

        found = tracker.store.query(get, what=f"reading run {run_id}")
        if found is None:
            _deps.authorize(request, "server", None, level)
            return
        _deps.authorize(request, "experiment", str(found.experiment_id), level)
        return
    _deps.authorize(request, "server", None, level)


@router.get("/lineage", response_model=Lineage, summary="Upstream and downstream edges of a node")
def lineage(
    request: Request,
    ref: str = Query(..., min_length=1, max_length=1024,
                     description="runs:/ID, runs:/ID/PATH, data:/NAME@V, models:/NAME/V or KIND:ID."),
    direction: Literal["up", "down", "both"] = Query("both"), depth: int | None = Query(None, ge=1, le=50),
) -> Any:
    _authorize(request, ref)
    return lineage_of(_deps.tracker(request), ref, direction, depth)


class NodeIn(_Body):
    kind: str = Field(min_length=1, max_length=32, description="run, artifact, dataset_version, model_version, …")
    id: str = Field(min_length=1, max_length=512)


class EdgeCreate(_Body):
    upstream: NodeIn
    downstream: NodeIn
    relation: str = Field(min_length=1, max_length=64)
    run_id: str | None = Field(None, pattern=RUN_ID)


@router.post("/lineage/edges", status_code=201, dependencies=[Depends(no_nul)],
             summary="Record that upstream flowed into downstream (again: no second edge)")
def record_edge(request: Request, body: EdgeCreate) -> Any:
    from conveyor.data import Node, record_lineage
    from conveyor.server.api.dataset_writes import EdgeOut
    from conveyor.server.api.runs import authorize_run

    upstream, downstream = Node(body.upstream.kind, body.upstream.id), Node(body.downstream.kind, body.downstream.id)
    _authorize(request, str(upstream), "read")
    _authorize(request, str(downstream), "edit")
    if body.run_id is not None:
        authorize_run(request, body.run_id, "edit")
    edge = record_lineage(_deps.tracker(request), upstream, downstream, body.relation, run_id=body.run_id)
    return json_response(EdgeOut(upstream=str(edge.upstream), downstream=str(edge.downstream),
                                 relation=edge.relation, created_at=edge.created_at or 0, run_id=edge.run_id), 201)
