"""MLflow's proxied artifact API (``/api/2.0/mlflow-artifacts/artifacts/…``).

A run's ``artifact_uri`` is ``mlflow-artifacts:/<experiment id>/<run id>/artifacts``, so the
client uploads to ``…/artifacts/<experiment id>/<run id>/artifacts/<path>``. The bytes go
into conveyor's content-addressed store and the path is recorded as a run artifact, the
same as ``conveyor.log_artifact`` does; a folder logged by conveyor (a manifest) lists and
downloads file by file. Uploads are spooled to a temporary file, never held in memory.
"""

from __future__ import annotations

import mimetypes
import tempfile
from collections.abc import Iterator
from typing import IO, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from conveyor.blobs import Digest
from conveyor.entities import Artifact
from conveyor.errors import ConveyorError
from conveyor.server import _access
from conveyor.server._errors import ApiError, from_conveyor
from conveyor.server._http import error_response, json_response
from conveyor.server._paths import safe_path
from conveyor.tracking import Tracker

PREFIXES = ("/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts")
MAX_UPLOAD_BYTES = 5 * 1024**3
CHUNK = 1024 * 1024


def _locate(path: str) -> tuple[str, str]:
    """``<exp>/<run>/artifacts[/<rest>]`` → (run id, rest); other layouts are a 400."""
    parts = path.split("/", 3)
    if len(parts) < 3 or parts[2] != "artifacts" or not parts[0].isdigit():
        raise ApiError("INVALID_PARAMETER_VALUE",
                       f"Invalid artifact path {path!r}: expected <experiment id>/<run id>/artifacts/<path>.")
    return parts[1], parts[3] if len(parts) == 4 else ""


def _run(tracker: Tracker, exp_id: str, run_id: str, level: str = "read") -> None:
    """The run exists in that experiment, and the caller may ``level`` it (read or edit)."""
    run = tracker.get_run(run_id)
    if str(run.experiment_id) != exp_id:
        raise ApiError("RESOURCE_DOES_NOT_EXIST", f"Run {run_id} is not in experiment {exp_id}.")
    _access.current().require("experiment", run.experiment_id, level)


def _store(tracker: Tracker, exp_id: str, run_id: str, rel: str, spool: IO[bytes]) -> None:
    _run(tracker, exp_id, run_id, "edit")
    spool.seek(0)
    blob = tracker.blobs.put_stream(spool)  # type: ignore[arg-type]
    media = mimetypes.guess_type(rel)[0] or "application/octet-stream"

    def record(conn: Any) -> None:  # an upsert: a plain retry through a database blink
        row = tracker.store.runs.require(conn, run_id)
        if row.deleted_at is not None:
            raise ApiError("INVALID_STATE", f"Run {run_id} is deleted; restore it before logging to it.")
        tracker.store.artifacts.record(conn, Artifact(run_id, rel, str(blob.digest), blob.size, media))

    tracker.store.transaction(record, what=f"recording artifact {rel!r} of run {run_id}")


async def upload(request: Request) -> Response:
    try:
        path = safe_path(request.path_params["path"])
        run_id, rel = _locate(path)
        if not rel:
            raise ApiError("INVALID_PARAMETER_VALUE", f"Invalid artifact path {path!r}: names no file.")
        access = _access.of(request)
        limit = getattr(request.app.state, "max_upload_bytes", MAX_UPLOAD_BYTES)
        # refuse before reading the body: a caller who may not write sends nothing to disk
        await run_in_threadpool(_access.call, access, _run, request.app.state.tracker, path.split("/", 1)[0],
                                run_id, "edit")
        with tempfile.TemporaryFile() as spool:
            size = 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise ApiError("REQUEST_LIMIT_EXCEEDED", f"artifact over {limit} bytes ([server] max_upload_bytes)")
                spool.write(chunk)
            await run_in_threadpool(_access.call, access, _store, request.app.state.tracker, path.split("/", 1)[0], run_id, rel, spool)
    except ApiError as error:
        return error_response(error)
    except ConveyorError as error:
        return error_response(from_conveyor(error))
    return json_response({})


def _entries(tracker: Tracker, run_id: str) -> list[tuple[str, int, str]]:
    """Every file of the run as (path, size, digest), folders (manifests) expanded."""
    out = []
    for art in tracker.list_artifacts(run_id):
        if art.is_dir:
            for entry in tracker.blobs.read_manifest(Digest.parse(art.digest)).entries:
                out.append((f"{art.path}/{entry.path}", entry.size, str(entry.digest)))
        else:
            out.append((art.path, art.size, art.digest))
    return out


def _list(tracker: Tracker, path: str) -> dict[str, Any]:
    if not path:
        return {"files": []}
    exp_id = path.split("/", 1)[0]
    run_id, rel = _locate(path)
    _run(tracker, exp_id, run_id)
    base = f"{rel}/" if rel else ""
    files: dict[str, dict[str, Any]] = {}
    for full, size, _ in _entries(tracker, run_id):
        if not full.startswith(base) or full == rel:
            continue
        head, sep, _rest = full[len(base):].partition("/")
        files[head] = {"path": head, "is_dir": True} if sep else {"path": head, "is_dir": False, "file_size": size}
    return {"files": sorted(files.values(), key=lambda f: f["path"])}


async def listing(request: Request) -> Response:
    try:
        path = safe_path(request.query_params.get("path", ""), allow_empty=True)
        return json_response(await run_in_threadpool(_access.call, _access.of(request), _list,
                                                     request.app.state.tracker, path))
    except ApiError as error:
        return error_response(error)
    except ConveyorError as error:
        return error_response(from_conveyor(error))


def _open(tracker: Tracker, path: str) -> tuple[IO[bytes], str]:
    exp_id = path.split("/", 1)[0]
    run_id, rel = _locate(path)
    _run(tracker, exp_id, run_id)
    for full, _, digest in _entries(tracker, run_id):
        if full == rel:
            media = mimetypes.guess_type(rel)[0] or "application/octet-stream"
            return tracker.blobs.open_read(Digest.parse(digest)), media
    raise ApiError("RESOURCE_DOES_NOT_EXIST", f"Artifact {rel!r} of run {run_id} not found.")


def _chunks(handle: IO[bytes]) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK):
            yield chunk


async def download(request: Request) -> Response:
    try:
        path = safe_path(request.path_params["path"])
        handle, media = await run_in_threadpool(_access.call, _access.of(request), _open,
                                                request.app.state.tracker, path)
    except ApiError as error:
        return error_response(error)
    except ConveyorError as error:
        return error_response(from_conveyor(error))
    return StreamingResponse(_chunks(handle), media_type=media)


async def multipart(request: Request) -> Response:
    # The client falls back to a plain PUT on exactly this message (mlflow_artifacts_repo.py).
    return error_response(ApiError(
        "NOT_IMPLEMENTED", "Multipart upload is not supported for the current artifact repository"))


def routes() -> list[BaseRoute]:
    out: list[BaseRoute] = []
    for prefix in PREFIXES:
        out += [
            Route(f"{prefix}/artifacts", listing, methods=["GET"]),
            Route(f"{prefix}/artifacts/{{path:path}}", download, methods=["GET"]),
            Route(f"{prefix}/artifacts/{{path:path}}", upload, methods=["PUT"]),
            Route(f"{prefix}/mpu/create/{{path:path}}", multipart, methods=["POST"]),
        ]
    return out
