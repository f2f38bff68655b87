"""The ASGI application: MLflow's REST API (both prefixes), health, version, metrics."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from conveyor.server import _experiments, _logging, _models, _observe, _runs
from conveyor.server._access import RolePolicy
from conveyor.server._auth import Authenticate, Sessions
from conveyor.server._errors import ApiError
from conveyor.server._http import endpoint, error_response
from conveyor.server._harden import Harden
from conveyor.server._users import Users
from conveyor.settings import ServerSettings
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
    from starlette.requests import ClientDisconnect

    if isinstance(exc, ClientDisconnect):  # the client left, or its body went over the limit (413)
        return error_response(ApiError("BAD_REQUEST", "the client disconnected"))
    _observe.access_log.getChild("error").exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(ApiError("INTERNAL_ERROR", "internal error; the server log has the details"))


class _LazyAPI:
    """``/api/v1``, built on first use: FastAPI and pydantic's models cost about a third of
    the server's start-up, and ``/health`` answers without them. ``warm`` builds it (and
    loads the filter parser) on a background thread right after start, so the first
    request rarely waits."""

    def __init__(self, tracker: Tracker, policy: Any = None, server: ServerSettings | None = None) -> None:
        self.tracker = tracker
        self.policy = policy
        self.server = server
        self.app: Any = None
        self.lock = threading.Lock()

    def build(self) -> Any:
        with self.lock:
            if self.app is None:
                from conveyor.server.api import create_api

                self.app = create_api(self.tracker, policy=self.policy, server=self.server)
            return self.app

    def warm(self) -> None:
        try:
            self.build()
            from conveyor.store import parse_filter

            parse_filter("metrics.m < 1")
        except Exception:  # noqa: BLE001 - warming is an optimisation; a real request reports the error
            _observe.access_log.getChild("error").debug("warm-up failed", exc_info=True)

    def __getattr__(self, name: str) -> Any:
        """Everything else (``state``, ``include_router``, ``openapi`` …) is the built app's."""
        if name in ("tracker", "policy", "server", "app", "lock"):
            raise AttributeError(name)
        return getattr(self.build(), name)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        app = self.app if self.app is not None else await run_in_threadpool(self.build)
        await app(scope, receive, send)


class _LazyUI:
    """The web UI (``router.default``), built on first use like ``/api/v1``: its pages and
    jinja2 are not needed before the first request; the warm-up thread builds it too."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make
        self.app: Any = None
        self.lock = threading.Lock()

    def build(self) -> Any:
        with self.lock:
            if self.app is None:
                self.app = self.make()
            return self.app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        app = self.app if self.app is not None else await run_in_threadpool(self.build)
        await app(scope, receive, send)


def create_app(tracker: Tracker, *, close_tracker: bool = False, auth: bool = False,
               server: ServerSettings | None = None, users: Users | None = None) -> Starlette:
    """The server's app over one open ``Tracker``. ``close_tracker`` closes it on shutdown.
    With ``auth`` every route but ``/health`` needs a user's token or password, and roles
    decide what each user may do; ``server`` holds the ``[server]`` settings (host
    allow-list, CORS, body limits, default role)."""
    metrics = _observe.Metrics()
    server = server or ServerSettings()
    policy = RolePolicy(users or Users(tracker.store), tracker, server.default_role) if auth else None

    api = _LazyAPI(tracker, policy, server)

    def make_ui() -> Any:
        from conveyor.ui import create_ui

        return create_ui(tracker, policy=lambda: api.build().state.policy, api_not_found=_http_error,
                         sessions=Sessions(policy.users, server.session_hours) if policy is not None else None)

    ui = _LazyUI(make_ui)

    def warm() -> None:
        api.warm()
        try:
            ui.build()
        except Exception:  # noqa: BLE001 - as api.warm: the first page request reports the error
            _observe.access_log.getChild("error").debug("UI warm-up failed", exc_info=True)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        threading.Thread(target=warm, name="conveyor-warm-up", daemon=True).start()
        try:
            yield
        finally:
            if close_tracker:
                tracker.close()

    app = Starlette(routes=[*routes(), Mount("/api/v1", app=api)], lifespan=lifespan,
                    exception_handlers={HTTPException: _http_error, Exception: _crash})
    # The web UI answers every path no API route matches (unknown API paths keep their JSON 404).
    app.router.default = ui
    app.state.tracker = tracker
    app.state.metrics = metrics
    app.state.policy = policy
    app.state.max_json_bytes = server.max_json_bytes
    app.state.max_upload_bytes = server.max_upload_bytes
    # the last added is the outermost: Observe → Harden → CORS (when configured) → Authenticate → routes
    if policy is not None:
        app.add_middleware(Authenticate, users=policy.users)
    if server.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(server.cors_origins),
                           allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                           allow_headers=["authorization", "content-type", "idempotency-key"], max_age=600)
    app.add_middleware(Harden, allowed_hosts=server.allowed_hosts, cors_origins=server.cors_origins,
                       max_json_bytes=server.max_json_bytes, max_upload_bytes=server.max_upload_bytes)
    app.add_middleware(_observe.Observe, metrics=metrics)  # outermost: refusals and 401s are logged and counted
    return app
