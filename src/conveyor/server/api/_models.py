"""Request and response bodies of ``/api/v1``'s tracking routes (experiments, runs, artifacts).

Metric values may be NaN or infinite: JSON has no such numbers, so they travel as the
strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (both ways). Responses are written
with :func:`json_response`, which keeps that rule; the models also describe the OpenAPI
document.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from conveyor.entities import Artifact, Experiment, Metric, Run

#: Run ids are 32 hexadecimal characters (``uuid4().hex``); prefixes are resolved by search.
RUN_ID = r"^[0-9a-fA-F]{1,32}$"
#: What an ``Idempotency-Key`` may be: up to 32 letters, digits, ``-`` and ``_`` (a uuid4 hex fits).
IDEMPOTENCY_KEY = r"^[A-Za-z0-9_-]{1,32}$"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings")


#: A JSON-escaped NUL (``\u0000`` not itself escaped): PostgreSQL cannot store NUL in text.
_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


async def no_nul(request: Request) -> None:
    """Refuse a JSON body holding a NUL character with a 400 before it is parsed (a regular
    expression over the bytes: linear, whatever the body's shape)."""
    kind = request.headers.get("content-type", "")
    if request.method in ("POST", "PUT", "PATCH") and (not kind or "json" in kind):
        if _NUL.search(await request.body()):
            from conveyor.server.api._errors import ApiV1Error

            raise ApiV1Error("INVALID", "the body contains a NUL character (\\u0000), which cannot be stored",
                             field="body")


class _Out(BaseModel):
    model_config = ConfigDict(ser_json_inf_nan="strings")


def json_response(model: BaseModel | list[Any], status: int = 200) -> Response:
    """``model`` as JSON with NaN and infinities as strings (what the models promise)."""
    if isinstance(model, list):
        body = b"[" + b",".join(m.model_dump_json().encode() for m in model) + b"]"
    else:
        body = model.model_dump_json().encode()
    return Response(body, status, media_type="application/json")


# -- experiments -----------------------------------------------------------------------------------
class ExperimentOut(_Out):
    id: int
    name: str
    description: str
    archived: bool
    created_at: int = Field(description="Milliseconds since the epoch.")
    tags: dict[str, str]

    @classmethod
    def of(cls, e: Experiment) -> ExperimentOut:
        return cls(id=e.id, name=e.name, description=e.description, archived=e.archived,
                   created_at=e.created_at, tags=dict(e.tags))


class ExperimentCreate(_Body):
    name: str = Field(min_length=1, max_length=256)
    description: str = Field("", max_length=100_000)
    tags: dict[str, str] = Field(default_factory=dict)


class ExperimentUpdate(_Body):
    description: str | None = Field(None, max_length=100_000, description="New description (unchanged when null).")
    archived: bool | None = Field(None, description="Archive (true) or restore (false) the experiment.")
    tags: dict[str, str] = Field(default_factory=dict, description="Tags to set (others are kept).")
    delete_tags: list[str] = Field(default_factory=list, description="Tag keys to remove.")


# -- runs -------------------------------------------------------------------------------------------
class RunOut(_Out):
    id: str
    experiment_id: int
    experiment: str
    name: str
    status: Literal["RUNNING", "FINISHED", "FAILED", "KILLED"]
    start_time: int
    end_time: int | None
    parent_id: str | None
    user: str
    host: str
    entry_point: str | None
    command: str | None
    git_commit: str | None
    git_branch: str | None
    git_dirty: bool | None
    python_version: str | None
    packages_digest: str | None
    error: str | None
    deleted: bool
    params: dict[str, str]
    metrics: dict[str, float] = Field(description="Latest value of each metric (NaN and infinities as strings).")
    tags: dict[str, str]

    @classmethod
    def of(cls, r: Run) -> RunOut:
        return cls(
            id=r.id, experiment_id=r.experiment_id, experiment=r.experiment, name=r.name, status=r.status.value,
            start_time=r.start_time, end_time=r.end_time, parent_id=r.parent_id, user=r.user, host=r.host,
            entry_point=r.entry_point, command=r.command, git_commit=r.git_commit, git_branch=r.git_branch,
            git_dirty=r.git_dirty, python_version=r.python_version, packages_digest=r.packages_digest,
            error=r.error, deleted=r.deleted, params=dict(r.params), metrics=dict(r.metrics), tags=dict(r.tags),
        )

    def entity(self) -> Run:
        from conveyor.entities import RunStatus

        data = self.model_dump()
        data["status"] = RunStatus(data["status"])
        return Run(**data)


class RunCreate(_Body):
    experiment: str | None = Field(None, min_length=1, max_length=256,
                                   description="Experiment name (created when missing; default: Default).")
    run_id: str | None = Field(None, pattern=r"^[0-9a-f]{32}$",
                               description="The id to give the run, chosen by the client so that a retried "
                                           "create finds its own run instead of making a second one.")
    name: str | None = Field(None, max_length=250)
    tags: dict[str, str] = Field(default_factory=dict)
    parent_id: str | None = Field(None, pattern=RUN_ID)
    user: str = Field("", max_length=250)
    host: str = Field("", max_length=250)
    entry_point: str | None = Field(None, max_length=1000)
    command: str | None = Field(None, max_length=10_000)
    git_commit: str | None = Field(None, max_length=64)
    git_branch: str | None = Field(None, max_length=250)
    git_dirty: bool | None = None
    python_version: str | None = Field(None, max_length=64)
    packages: str | None = Field(None, max_length=5_000_000,
                                 description="The installed packages (pip freeze text); stored as a blob "
                                             "whose digest becomes packages_digest.")
    packages_digest: str | None = Field(None, pattern=r"^blake3:[0-9a-f]{64}$",
                                        description="A packages list stored earlier (see packages).")


class RunEnd(_Body):
    status: Literal["FINISHED", "FAILED", "KILLED"] = "FINISHED"
    error: str | None = Field(None, max_length=1_000_000)


class RunUpdate(_Body):
    status: Literal["FINISHED", "FAILED", "KILLED"] | None = Field(None, description="End the run with this status.")
    error: str | None = Field(None, max_length=1_000_000)
    deleted: bool | None = Field(None, description="Mark the run deleted (true) or restore it (false).")


class MetricPoint(_Body):
    key: str = Field(min_length=1, max_length=250)
    value: float = Field(description='A number, or "NaN", "Infinity", "-Infinity".')
    step: int = Field(0, ge=-(2**63), lt=2**63)
    timestamp: int = Field(ge=0, lt=2**63, description="Milliseconds since the epoch.")


class RunBatch(_Body):
    metrics: list[MetricPoint] = Field(default_factory=list, max_length=100_000)
    params: dict[str, Any] = Field(default_factory=dict)
    tags: dict[str, Any] = Field(default_factory=dict)
    end: RunEnd | None = Field(None, description="End the run in the same transaction, after the rest.")


class BatchResult(_Out):
    applied: bool = Field(description="False when a batch with the same Idempotency-Key was applied before "
                                      "(nothing was written again).")
    metrics: int = Field(description="Points written by this request.")


class RunSearch(_Body):
    experiments: list[str] | None = Field(None, description="Experiment names (all when null).")
    filter: str = Field("", max_length=100_000, description="conveyor's filter language, as `conveyor runs list -f`.")
    order_by: list[str] = Field(default_factory=list, max_length=20)
    max_results: int = Field(1000, ge=1, le=50_000, description="Page size.")
    page_token: str | None = Field(None, max_length=200)
    include_deleted: bool = False


class RunPage(_Out):
    runs: list[RunOut]
    next_page_token: str | None


class Heartbeats(_Body):
    run_ids: list[str] = Field(max_length=10_000)


class MetricOut(_Out):
    key: str
    value: float
    step: int
    timestamp: int

    @classmethod
    def of(cls, m: Metric) -> MetricOut:
        return cls(key=m.key, value=m.value, step=m.step, timestamp=m.timestamp)


class MetricHistory(_Out):
    key: str
    points: list[MetricOut]
    total: int = Field(description="Points stored; more than len(points) when max_points downsampled them.")


# -- artifacts -------------------------------------------------------------------------------------------
class ArtifactOut(_Out):
    run_id: str
    path: str
    digest: str
    size: int
    media_type: str
    is_dir: bool

    @classmethod
    def of(cls, a: Artifact) -> ArtifactOut:
        return cls(run_id=a.run_id, path=a.path, digest=a.digest, size=a.size, media_type=a.media_type,
                   is_dir=a.is_dir)

    def entity(self) -> Artifact:
        return Artifact(**self.model_dump())


class BlobOut(_Out):
    digest: str
    size: int


class FolderEntry(_Body):
    path: str = Field(min_length=1, max_length=4096)
    digest: str = Field(pattern=r"^blake3:[0-9a-f]{64}$")
    size: int = Field(ge=0)


class FolderCreate(_Body):
    entries: list[FolderEntry] = Field(max_length=1_000_000,
                                       description="The folder's files, each uploaded before with PUT …/blobs.")


class ArtifactFile(_Out):
    path: str
    size: int
    digest: str

