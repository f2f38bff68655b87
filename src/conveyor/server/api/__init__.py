"""conveyor's own REST API, mounted by the server at ``/api/v1``.

One FastAPI application: each domain is an ``APIRouter`` in its own module, listed in
:data:`ROUTERS`. The OpenAPI 3.1 document is generated from the code and served at
``/api/v1/openapi.json``. Every error has one shape (:mod:`conveyor.server.api._errors`);
every handler asks :func:`conveyor.server.api._deps.authorize` before it reads or writes.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from conveyor._version import __version__
from conveyor.server.api import _errors, _system, artifacts, experiments, runs, uploads
from conveyor.server.api import dataset_blobs, dataset_writes, datasets, lineage, models, monitoring
from conveyor.server.api import gate_evaluations, monitoring_reports, monitoring_runs, pipelines
from conveyor.server.api import pipeline_blobs, pipeline_writes

#: Every router of the API, in the order their paths appear in the OpenAPI document.
ROUTERS = [
    _system.router,
    experiments.router,
    runs.router,
    artifacts.router,
    uploads.router,
    datasets.router,
    dataset_writes.router,
    dataset_blobs.router,
    pipelines.router,
    pipeline_writes.router,
    pipeline_writes.inputs_router,
    pipeline_blobs.router,
    models.router,
    gate_evaluations.router,
    monitoring.router,
    monitoring_runs.router,
    monitoring_reports.router,
    lineage.router,
]


def create_api(tracker: Any, *, policy: Any = None, server: Any = None) -> FastAPI:
    """The ``/api/v1`` application over one open ``Tracker``. ``policy`` decides who may do
    what (``conveyor.server.api._deps.AllowAll`` when None: the loopback default); ``server``
    holds the ``[server]`` settings (presigned URLs, upload expiry; defaults when None)."""
    from conveyor.settings import ServerSettings

    from conveyor.server.api._deps import AllowAll

    api = FastAPI(
        title="conveyor",
        version=__version__,
        summary="conveyor's REST API: tracking, data sets, pipelines, registry, monitoring.",
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    api.state.tracker = tracker
    api.state.policy = policy if policy is not None else AllowAll()
    api.state.server = server if server is not None else ServerSettings()
    _errors.install(api)
    for router in ROUTERS:
        api.include_router(router)
    return api


__all__ = ["ROUTERS", "create_api"]
