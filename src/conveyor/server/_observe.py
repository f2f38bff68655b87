"""Operations: one JSON access-log line per request, Prometheus metrics, health and version.

Metrics use ``prometheus_client`` with a registry per app (a test can build many apps in
one process). The route label is the matched route's template, never the raw path, so a
client cannot blow up the label set.
"""

from __future__ import annotations

import logging
import time

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conveyor._version import __version__

access_log = logging.getLogger("conveyor.server.access")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("conveyor_server_requests", "HTTP requests answered.",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("conveyor_server_request_seconds", "Time to answer a request.",
                                 ["method", "route"], registry=self.registry)


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


class Observe:
    """ASGI middleware: counts, times and logs each HTTP request."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = _route(scope)
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(scope["method"], route).observe(elapsed)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(orjson.dumps({
                    "ts": round(time.time(), 3), "method": scope["method"], "path": scope["path"],
                    "route": route, "status": status, "ms": round(elapsed * 1000, 3),
                    "user": getattr(scope.get("conveyor.user"), "name", None),
                    "client": scope["client"][0] if scope.get("client") else None,
                }).decode())


async def health(request: Request) -> Response:
    return PlainTextResponse("OK")


async def version(request: Request) -> Response:
    return PlainTextResponse(__version__)


async def metrics(request: Request) -> Response:
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
