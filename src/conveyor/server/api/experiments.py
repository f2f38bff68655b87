"""``/api/v1/experiments``: create, read, list and change experiments."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from conveyor.server.api import _deps
from conveyor.server.api._models import no_nul, ExperimentCreate, ExperimentOut, ExperimentUpdate, json_response

router = APIRouter(prefix="/experiments", tags=["experiments"], dependencies=[Depends(no_nul)])


@router.post("", response_model=ExperimentOut, status_code=201, summary="Create an experiment",
             responses={409: {"description": "An experiment of that name exists"}})
def create(request: Request, body: ExperimentCreate) -> Response:
    _deps.authorize(request, "experiment", None, "edit")
    tracker = _deps.tracker(request)
    made = tracker.create_experiment(body.name, description=body.description, tags=body.tags)
    return json_response(ExperimentOut.of(made), 201)


@router.get("", response_model=list[ExperimentOut], summary="List experiments (oldest first)")
def list_(request: Request, include_archived: bool = Query(False, description="Include archived ones.")) -> Response:
    _deps.authorize(request, "experiment", None, "read")
    found = _deps.tracker(request).list_experiments(include_archived=include_archived)
    return json_response([ExperimentOut.of(e) for e in found])


@router.get("/by-name", response_model=ExperimentOut, summary="One experiment by name")
def get_by_name(request: Request, name: str = Query(min_length=1, max_length=256, pattern=r"^[^\x00]*$")) -> Response:
    found = _deps.tracker(request).get_experiment(name)
    _deps.authorize(request, "experiment", str(found.id), "read")
    return json_response(ExperimentOut.of(found))


@router.get("/{experiment_id}", response_model=ExperimentOut, summary="One experiment by id")
def get(request: Request, experiment_id: int) -> Response:
    _deps.authorize(request, "experiment", str(experiment_id), "read")
    return json_response(ExperimentOut.of(_deps.tracker(request).get_experiment(_id(experiment_id))))


@router.patch("/{experiment_id}", response_model=ExperimentOut,
              summary="Change an experiment's description, tags, or archived state")
def update(request: Request, experiment_id: int, body: ExperimentUpdate) -> Response:
    _deps.authorize(request, "experiment", str(experiment_id), "edit")
    tracker = _deps.tracker(request)
    store = tracker.store
    experiment_id = _id(experiment_id)

    def change(conn: Any) -> None:
        store.experiments.update(conn, experiment_id, description=body.description, tags=body.tags,
                                 delete_tags=body.delete_tags)
        if body.archived is not None:
            store.experiments.set_archived(conn, store.experiments.get(conn, experiment_id).name, body.archived)

    store.transaction(change, what="changing an experiment")
    return json_response(ExperimentOut.of(tracker.get_experiment(experiment_id)))


def _id(value: int) -> int:
    from conveyor.errors import NotFound

    if not 0 < value < 2**31:  # the column is a 32-bit integer: larger ids cannot exist
        raise NotFound("experiment", value, hint="`conveyor experiments list` shows the known ones")
    return value
