"""The ASGI application: MLflow's REST API (both prefixes), health, version, metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
import threading
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from conveyor.server import _experiments, _logging, _models, _observe, _runs
from conveyor.server._auth import RequireToken
from conveyor.server._errors import ApiError
from conveyor.server._http import endpoint, error_response
from conveyor.server._tokens import TokenStore
from conveyor.tracking import Tracker

PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")

#: (path under the prefix, methods, handler)
TRACKING: list[tuple[str, list[str], Callable[..., dict[str, Any]]]] = [
    ("/experiments/create", ["POST"], _experiments.create),
    ("/experiments/get", ["GET"], _experiments.get),
    ("/experiments/get-by-name", ["GET"], _experiments.get_by_name),
    ("/experiments/search", ["GET", "POST"], _experiments.search),
    ("/experiments/update", ["POST"], _experiments.update_),
    ("/experiments/delete", ["POST"], _experiments.delete),
    ("/experiments/restore", ["POST"], _experiments.restore),
    ("/runs/create", ["POST"], _runs.create),
    ("/runs/update", ["POST"], _runs.update_),
    ("/runs/get", ["GET"], _runs.get),
    ("/runs/search", ["GET", "POST"], _runs.search),
    ("/runs/delete", ["POST"], _runs.delete),
    ("/runs/restore", ["POST"], _runs.restore),
    ("/runs/log-metric", ["POST"], _logging.log_metric),
    ("/runs/log-parameter", ["POST"], _logging.log_param),
    ("/runs/set-tag", ["POST"], _logging.set_tag),
    ("/runs/delete-tag", ["POST"], _logging.delete_tag),
    ("/runs/log-batch", ["POST"], _logging.log_batch),
    ("/runs/log-inputs", ["POST"], _logging.log_inputs),
    ("/metrics/get-history", ["GET"], _logging.get_history),
    ("/logged-models/search", ["POST"], _logging.search_logged_models),
]

REGISTRY: list[tuple[str, list[str], Callable[..., dict[str, Any]]]] = [
    ("/registered-models/create", ["POST"], _models.create_model),
    ("/registered-models/get", ["GET"], _models.get_model),
    ("/registered-models/search", ["GET"], _models.search_models),
    ("/model-versions/create", ["POST"], _models.create_version),
    ("/model-versions/get", ["GET"], _models.get_version),
    ("/model-versions/search", ["GET"], _models.search_versions),
    ("/registered-models/alias", ["POST"], _models.set_alias),
    ("/registered-models/alias", ["GET"], _models.get_alias),
    ("/registered-models/alias", ["DELETE"], _models.delete_alias),
]


def routes() -> list[BaseRoute]:
    out: list[BaseRoute] = [
        Route("/health", _observe.health, methods=["GET"]),
        Route("/version", _observe.version, methods=["GET"]),
        Route("/metrics", _observe.metrics, methods=["GET"]),
    ]
    for prefix in PREFIXES:
        out += [Route(prefix + path, endpoint(handler), methods=methods) for path, methods, handler in TRACKING + REGISTRY]
    from conveyor.server import _artifacts

    out += _artifacts.routes()
    return out


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and wrong methods, in MLflow's shape."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return error_response(ApiError("METHOD_NOT_ALLOWED", f"{request.method} is not allowed on {request.url.path}"))
    if exc.status_code == 404:
        return error_response(ApiError("ENDPOINT_NOT_FOUND", f"No endpoint {request.method} {request.url.path}"))
    return error_response(ApiError("BAD_REQUEST", str(exc.detail)))


async def _crash(request: Request, exc: Exception) -> Response:
    """A bug must not leak a traceback to the client; the log has it."""
    _observe.access_log.getChild("error").exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(ApiError("INTERNAL_ERROR", "internal error; the server log has the details"))


class _LazyAPI:
    """``/api/v1``, built on first use: FastAPI and pydantic's models cost about a third of
    the server's start-up, and ``/health`` answers without them. ``warm`` builds it (and
    loads the filter parser) on a background thread right after start, so the first
    request rarely waits."""

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker
        self.app: Any = None
        self.lock = threading.Lock()

    def build(self) -> Any:
        with self.lock:
            if self.app is None:
                from conveyor.server.api import create_api

                self.app = create_api(self.tracker)
            return self.app

    def warm(self) -> None:
        try:
            self.build()
            from conveyor.store import parse_filter

            parse_filter("metrics.m < 1")
        except Exception:  # noqa: BLE001 - warming is an optimisation; a real request reports the error
            _observe.access_log.getChild("error").debug("warm-up failed", exc_info=True)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        app = self.app if self.app is not None else await run_in_threadpool(self.build)
        await app(scope, receive, send)


def create_app(tracker: Tracker, *, close_tracker: bool = False, tokens: TokenStore | None = None) -> Starlette:
    """The server's app over one open ``Tracker``. ``close_tracker`` closes it on shutdown;
    with ``tokens`` every route but ``/health`` needs one of them."""
    metrics = _observe.Metrics()

    api = _LazyAPI(tracker)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        threading.Thread(target=api.warm, name="conveyor-warm-up", daemon=True).start()
        try:
            yield
        finally:
            if close_tracker:
                tracker.close()

    app = Starlette(routes=[*routes(), Mount("/api/v1", app=api)], lifespan=lifespan,
                    exception_handlers={HTTPException: _http_error, Exception: _crash})
    app.state.tracker = tracker
    app.state.metrics = metrics
    if tokens is not None:
        app.add_middleware(RequireToken, tokens=tokens)
    app.add_middleware(_observe.Observe, metrics=metrics)  # outermost: 401s are logged and counted
    return app
