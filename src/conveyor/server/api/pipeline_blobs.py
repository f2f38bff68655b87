"""``/api/v1/pipelines/runs/{run}/blobs``: the objects of a pipeline run, for remote mode's
pipeline runner and its local workers (``conveyor.pipelines._remote.RunBlobs`` is the client).

- ``POST …/blobs/missing``: which of up to 10,000 digests the artifact store lacks.
- ``PUT …/blobs/{digest}``: one object (step outputs, logs, what a step logs), streamed to a
  temporary file (bounded size) while hashed; bytes that do not hash to ``digest`` are refused.
- ``GET``/``HEAD …/blobs/{digest}``: one object, when it belongs to the pipeline run: an
  output, a log or an artifact recorded on one of its step runs, or a file such a folder
  lists, or an object of a data set version its steps read (``read`` on that data set too).
  Anything else is a 404, whether it is stored or not.

Permission: ``edit`` on the pipeline run's experiment to upload, ``read`` to download.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Request
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from conveyor.blobs import Digest
from conveyor.errors import NotFound
from conveyor.server import _possession as possession
from conveyor.server.api import _deps
from conveyor.server.api._models import RUN_ID, BlobOut, json_response
from conveyor.server.api.artifacts import _chunks, _open
from conveyor.server.api.dataset_blobs import _OCTETS, DigestList, MissingOut, _digest, _members, store_body
from conveyor.server.api.runs import authorize_run

router = APIRouter(prefix="/pipelines/runs/{run_id}/blobs", tags=["pipelines"])

RunId = Path(..., description="The pipeline run's id.", pattern=RUN_ID, max_length=32)
DigestText = Path(..., description="blake3:<64 hexadecimal characters>", min_length=7, max_length=80)


@router.post("/missing", response_model=MissingOut, summary="Which of these objects the server lacks")
def missing(request: Request, body: DigestList, run_id: str = RunId) -> Response:
    authorize_run(request, run_id, "edit")
    wanted = {_digest(d, "digests"): d for d in body.digests}
    present = _deps.tracker(request).blobs.exists_many(wanted)
    # "Missing" also for what the caller may not reference: they upload it, and learn nothing.
    present = possession.held(request, present, lambda rest: readable_outputs(request, rest))
    return json_response(MissingOut(missing=sorted(str(d) for d in wanted if d not in present)))


def readable_outputs(request: Request, digests: Any) -> set[str]:
    """Those of ``digests`` that are step outputs in experiments the caller may read."""
    from conveyor.store._pipelines import step_outputs
    from conveyor.store._runs import runs

    texts = sorted({str(d) for d in digests})
    if not texts:
        return set()
    by_experiment: dict[str, set[str]] = {}
    with _deps.tracker(request).store.read() as conn:
        for row in conn.execute(select(step_outputs.c.digest, runs.c.experiment_id)
                                .join(runs, runs.c.id == step_outputs.c.run_id)
                                .where(step_outputs.c.digest.in_(texts))):
            by_experiment.setdefault(str(row.experiment_id), set()).add(row.digest)
    found: set[str] = set()
    for experiment in _deps.readable(request, "experiment", by_experiment) if by_experiment else ():
        found |= by_experiment[experiment]
    return found


@router.put("/{digest}", response_model=BlobOut, status_code=201, openapi_extra=_OCTETS,
            summary="Upload one object of a pipeline run (the body's BLAKE3 digest must be {digest})")
async def upload(request: Request, run_id: str = RunId, digest: str = DigestText) -> Response:
    await run_in_threadpool(authorize_run, request, run_id, "edit")
    return await store_body(request, _digest(digest))


def _belongs(request: Request, run_id: str, digest: Digest) -> None:
    """A 404 unless ``digest`` is an object of the pipeline run (see the module docstring)."""
    from conveyor.store._pipelines import step_executions

    tracker = _deps.tracker(request)
    store = tracker.store
    text = str(digest)
    with store.read() as conn:
        steps = [r.run_id for r in conn.execute(
            select(step_executions.c.run_id).where(step_executions.c.pipeline_run_id == run_id))]
        folders: list[str] = []
        for step in steps:
            for artifact in store.artifacts.list(conn, step, ""):
                if artifact.digest == text:
                    return
                if artifact.is_dir:
                    folders.append(artifact.digest)
    for folder in folders:
        try:
            if text in _members(tracker.blobs, folder):
                return
        except (OSError, ValueError, KeyError):
            continue
    if _dataset_object(request, steps, text):
        return
    raise NotFound("object", f"{text} of pipeline run {run_id}",
                   hint="download only outputs, logs and artifacts of the pipeline run's steps")


def _dataset_object(request: Request, steps: list[str], text: str) -> bool:
    """Whether ``text`` is an object of a data set input the run's steps read (``read`` on
    that data set asked too): its input manifest, or what that lists."""
    from conveyor.data import parse_dataset_ref
    from conveyor.pipelines._datasets import resolve
    from conveyor.pipelines._record import DATA_INPUTS_TAG

    tracker = _deps.tracker(request)
    with tracker.store.read() as conn:
        tags = tracker.store.runs.tags_of(conn, steps) if steps else {}
    refs = sorted({r for t in tags.values() for r in t.get(DATA_INPUTS_TAG, "").split(",") if r})
    for ref in refs:
        name = parse_dataset_ref(ref).name
        if not _deps.readable(request, "data", [name]):
            continue
        manifest = resolve(tracker, ref)[1]["digest"]  # content-addressed: the same manifest again
        if text == manifest or text in _members(tracker.blobs, manifest):
            return True
    return False


def _found(request: Request, run_id: str, digest: str) -> tuple[Any, Digest, dict[str, str]]:
    authorize_run(request, run_id, "read")  # first: a refused caller learns nothing
    wanted = _digest(digest)
    _belongs(request, run_id, wanted)
    tracker = _deps.tracker(request)
    size = tracker.blobs.size(wanted)
    return tracker, wanted, {"Content-Length": str(size), "X-Conveyor-Digest": str(wanted)}


@router.get("/{digest}", summary="Download one object of a pipeline run",
            responses={200: {"content": {"application/octet-stream": {}}, "description": "The bytes"}})
def download(request: Request, run_id: str = RunId, digest: str = DigestText) -> Response:
    tracker, wanted, headers = _found(request, run_id, digest)
    size = int(headers["Content-Length"])
    return StreamingResponse(_chunks(_open(tracker, wanted, 0), size), media_type="application/octet-stream",
                             headers=headers)


@router.head("/{digest}", summary="The size of one object of a pipeline run (Content-Length)")
def object_size(request: Request, run_id: str = RunId, digest: str = DigestText) -> Response:
    return Response(b"", media_type="application/octet-stream", headers=_found(request, run_id, digest)[2])


__all__ = ["readable_outputs", "router"]
