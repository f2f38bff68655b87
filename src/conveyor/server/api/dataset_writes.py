"""``/api/v1/datasets`` writes for remote mode's ``conveyor.data``: record a version of
objects already uploaded (``dataset_blobs``), and record that a run read a version.

``POST /datasets/{name}/versions`` runs ``conveyor.data``'s own code on the server's stores:
every object must be stored (a folder's manifest and each file it lists), size and file
count are taken from the store, a table is profiled here, and the row is written last in one
transaction. Content equal to the latest version's creates nothing (200 with
``created: false``); a new version answers 201. An ``Idempotency-Key`` makes a retry after a
lost answer report the version the first attempt made, ``created`` as it was then: the key's
receipt is a ``write_receipts`` row written in the version's own transaction, so this holds
across server processes (``--workers``) and restarts (pruned after a day by ``conveyor gc``).

Permission: ``edit`` on the data set (a new name: the right to create one, and the creator
then manages it); naming a producing run needs ``edit`` on the run's experiment. Recording
an input needs ``read`` on the data set and ``edit`` on the run's experiment.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Request
from pydantic import Field
from starlette.responses import Response

from conveyor.server.api import _deps
from conveyor.server.api._models import IDEMPOTENCY_KEY, RUN_ID, _Body, _Out, json_response, no_nul
from conveyor.server.api.dataset_blobs import require_possession, writable
from conveyor.server.api.datasets import DatasetVersionDetail
from conveyor.server.api.runs import authorize_run

router = APIRouter(prefix="/datasets/{name}", tags=["datasets"])

DatasetName = Path(..., description="Data set name.", min_length=1, max_length=128)
VersionNumber = Path(..., description="Version number.", ge=1, le=2**31 - 1)


class VersionCreate(_Body):
    digest: str = Field(min_length=7, max_length=80, description="The uploaded object: a file, or a folder's manifest.")
    kind: Literal["file", "folder", "table"]
    format: Literal["csv", "parquet"] | None = Field(None, description="csv or parquet for tables, else null.")
    source: str = Field("", max_length=4096, description="Where it was added from (recorded as given).")
    run_id: str | None = Field(None, pattern=RUN_ID, description="The run that produced it.")


class VersionCreated(DatasetVersionDetail):
    created: bool = Field(description="False when the content equals the latest version's (nothing was made).")


class InputCreate(_Body):
    run_id: str = Field(pattern=RUN_ID, description="The run that read the version.")


class EdgeOut(_Out):
    upstream: str
    downstream: str
    relation: str
    created_at: int
    run_id: str | None


def receipt_token(key: str | None, name: str) -> str | None:
    """The ``write_receipts`` token of a request's ``Idempotency-Key`` on data set ``name``."""
    if key is None:
        return None
    return hashlib.sha256(f"datasets:{name}:{key}".encode()).hexdigest()[:32]


@router.post("/versions", response_model=VersionCreated, status_code=201, dependencies=[Depends(no_nul)],
             responses={200: {"model": VersionCreated, "description": "Unchanged: the latest version"}},
             summary="Record a version of uploaded objects (unchanged content makes none)")
def create_version(
    request: Request, body: VersionCreate, name: str = DatasetName,
    idempotency_key: str | None = Header(None, alias="Idempotency-Key", pattern=IDEMPOTENCY_KEY,
                                         description="The same key on a retry reports the first attempt's version."),
) -> Response:
    from conveyor.data._context import resolve
    from conveyor.data._refs import check_name
    from conveyor.data._schema import infer_schema
    from conveyor.data._versions import record_stored

    new = writable(request, check_name(name))
    if body.run_id is not None:
        authorize_run(request, body.run_id, "edit")
    require_possession(request, name, body.digest, body.kind)  # the objects are the caller's to name
    version = record_stored(resolve(_deps.tracker(request)), name, body.digest, body.kind, body.format, body.source,
                            body.run_id, receipt=receipt_token(idempotency_key, name))
    created = version.created
    if new and created:
        _deps.created(request, "data", name)  # the creator manages it
    schema = infer_schema(version.profile, source=version.ref).to_dict() if version.profile else None
    out = VersionCreated.model_validate({**version.to_dict(profile=True), "data_schema": schema, "created": created})
    return json_response(out, 201 if created else 200)


@router.post("/versions/{version}/inputs", response_model=EdgeOut, status_code=201, dependencies=[Depends(no_nul)],
             summary="Record that a run read this version (again: no second edge)")
def log_input(request: Request, body: InputCreate, name: str = DatasetName, version: int = VersionNumber) -> Any:
    from conveyor.data import log_input as record

    _deps.authorize(request, "data", name, "read")
    authorize_run(request, body.run_id, "edit")
    edge = record(f"data:/{name}@{version}", body.run_id, tracker=_deps.tracker(request))
    return json_response(EdgeOut(upstream=str(edge.upstream), downstream=str(edge.downstream),
                                 relation=edge.relation, created_at=edge.created_at or 0, run_id=edge.run_id), 201)


__all__ = ["EdgeOut", "router"]
