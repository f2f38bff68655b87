"""``create_app``: the ASGI application (Starlette) with both protocols."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route as Path

from conveyor._version import __version__
from conveyor.errors import ConveyorError, InvalidInput
from conveyor.serving import _feedback, _mlflow, _oip
from conveyor.serving._codec import Columns
from conveyor.serving._config import CanarySpec, ServingConfig, model_uri
from conveyor.serving._deploy import PROBABILITIES, Deployment, Fleet, ModelSource, ServedModel
from conveyor.serving._errors import HTTPError, from_conveyor
from conveyor.serving._follow import follow_forever
from conveyor.serving._http import (
    AccessLog,
    error_response,
    json_response,
    parse_json,
    read_body,
    require_json,
    valid_request_id,
)
from conveyor.serving._metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from conveyor.serving._metrics import UNKNOWN, Metrics
from conveyor.serving._predlog import LogWriter, Record

log = logging.getLogger("conveyor.serving")


class Server:
    """The state behind the routes: the fleet, metrics, the prediction log."""

    def __init__(self, fleet: Fleet, config: ServingConfig, metrics: Metrics, writer: LogWriter | None,
                 source: ModelSource | None, follow: bool, requests: _feedback.RequestIndex | None = None) -> None:
        self.fleet = fleet
        self.config = config
        self.metrics = metrics
        self.writer = writer
        self.requests = requests
        self.source = source
        self.follow = follow
        self.ready = False
        self.background: set[asyncio.Task[Any]] = set()
        self.sticky = config.sticky_header.lower() if config.sticky_header else None
        metrics.watch(fleet.depth, None if writer is None else lambda: (writer.dropped, writer.rejected))

    # -- lifespan ---------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        if self.writer is not None:
            self.writer.start()
        follower = None
        if self.follow and self.source is not None:
            follower = asyncio.create_task(
                follow_forever(self.fleet, self.source, self.config.follow_interval_s, self.background))
        refresher = None
        if self.metrics.multiprocess_dir is not None:  # the worker answering a scrape reads the others' files
            refresher = asyncio.create_task(_every(1.0, self.metrics.refresh))
        self.ready = True
        try:
            yield
        finally:
            self.ready = False
            for task in (follower, refresher):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            while self.background:  # shadow copies and draining old versions
                await asyncio.gather(*list(self.background), return_exceptions=True)
            await asyncio.gather(*(d.close() for d in self.fleet.all()), return_exceptions=True)
            if self.writer is not None:
                await asyncio.to_thread(self.writer.close)
            self.metrics.close()

    # -- inference --------------------------------------------------------------------------
    def _pick(self, request: Request, name: str, version: str | None) -> Deployment:
        if version is not None:
            return self.fleet.version(name, version)
        sticky = request.headers.get(self.sticky) if self.sticky else None
        return self.fleet.route(name).pick(sticky)

    async def _run(self, dep: Deployment, cols: Columns, rows: int, rid: str, started: float,
                   probabilities: bool = False) -> Columns:
        if rows < 1:  # models disagree on what zero rows mean (most raise): the client's mistake
            raise HTTPError(422, "the request holds no rows; send at least one row to predict")
        try:
            outputs = await dep.infer(cols, rows, probabilities)
        except HTTPError:
            raise
        except InvalidInput as exc:  # the model's own input check: still the client's mistake
            raise HTTPError(422, str(exc)) from None
        except ConveyorError as exc:
            raise from_conveyor(exc) from None
        except Exception as exc:
            log.error("request %s: model %s version %s failed: %s: %s", rid, dep.name, dep.version,
                      type(exc).__name__, exc, exc_info=exc)
            raise HTTPError(500, f"model {dep.name!r} version {dep.version} failed: {type(exc).__name__}: "
                            f"{exc} (request id {rid})") from None
        self._log(dep, rid, cols, outputs, rows, started)
        route = self.fleet.routes.get(dep.name)
        if route is not None and route.shadow is not None and dep is route.champion:
            task = asyncio.get_running_loop().create_task(self._shadow(route.shadow, cols, rows, rid, probabilities))
            self.background.add(task)
            task.add_done_callback(self.background.discard)
        return outputs

    def _log(self, dep: Deployment, rid: str, cols: Columns, outputs: Columns, rows: int, started: float,
             answered: bool = True) -> None:
        if self.writer is not None and self.writer.sampled():
            latency = (time.perf_counter() - started) * 1000
            logged = self.writer.add(Record("predictions", dep.name, dep.version, rid, int(time.time() * 1000), rows,
                                            cols, outputs, latency))
            if logged and answered and self.requests is not None:  # feedback may label it now
                self.requests.remember(dep.name, rid, dep.version, rows)

    async def _shadow(self, dep: Deployment, cols: Columns, rows: int, rid: str, probabilities: bool) -> None:
        started = time.perf_counter()
        status = 200
        try:
            outputs = await dep.infer(cols, rows, probabilities and dep.has_probabilities)
            self._log(dep, rid, cols, outputs, rows, started, answered=False)
        except Exception as exc:  # a shadow never answers anyone: count and move on
            status = exc.status if isinstance(exc, HTTPError) else 500
            log.warning("request %s: shadow %s version %s failed: %s", rid, dep.name, dep.version, exc)
        self.metrics.request(dep.name, dep.version, "shadow", status, time.perf_counter() - started)

    async def _answer(self, request: Request, protocol: str, handler: Any) -> Response:
        started = time.perf_counter()
        state = request.scope["state"]
        name = request.path_params.get("name") or request.query_params.get("model") or (
            self.fleet.order[0] if self.fleet.order else "")
        version = request.path_params.get("version")
        dep: Deployment | None = None
        status = 200
        try:
            dep = self._pick(request, name, version)
            state["model"], state["version"] = dep.name, dep.version
            response: Response = await handler(request, dep, started)
        except HTTPError as exc:
            status = exc.status
            response = error_response(exc, state["request_id"])
        # label values come from what is served, never from the request: a made-up name or
        # version adds no series (20,000 unknown names once grew /metrics to 125 MB)
        model = dep.name if dep else name if name in self.fleet.routes else UNKNOWN
        self.metrics.request(model, dep.version if dep else "", protocol, status, time.perf_counter() - started)
        return response

    async def infer(self, request: Request) -> Response:
        return await self._answer(request, "oip", self._infer)

    async def _infer(self, request: Request, dep: Deployment, started: float) -> Response:
        require_json(request)
        body = parse_json(await read_body(request, self.config.max_body_bytes, self.config.body_timeout_s))
        state = request.scope["state"]
        if isinstance(body, dict) and "x-request-id" not in request.headers and valid_request_id(body.get("id")):
            state["request_id"] = body["id"]
        cols, rows, wanted = _oip.parse_infer(body, dep.signature)
        _oip.check_outputs(wanted, dep.outputs)
        proba = wanted is not None and PROBABILITIES in wanted
        outputs = await self._run(dep, cols, rows, state["request_id"], started, proba)
        answer = _oip.infer_response(dep.name, dep.version, state["request_id"], outputs, dep.signature, wanted)
        return json_response(answer)

    async def invocations(self, request: Request) -> Response:
        return await self._answer(request, "mlflow", self._invocations)

    async def _invocations(self, request: Request, dep: Deployment, started: float) -> Response:
        kind = require_json(request, allow=("text/csv",))
        wanted = _mlflow.requested_outputs(request.query_params.getlist("output"), dep.outputs)
        data = await read_body(request, self.config.max_body_bytes, self.config.body_timeout_s)
        if kind == "text/csv":
            cols, rows = _mlflow.parse_csv(data, dep.signature)
        else:
            cols, rows = _mlflow.parse_json(parse_json(data), dep.signature)
        proba = wanted is not None and PROBABILITIES in wanted
        outputs = await self._run(dep, cols, rows, request.scope["state"]["request_id"], started, proba)
        if wanted is not None:
            unknown = [n for n in wanted if n not in outputs]
            if unknown:  # a model without a signature: its outputs are known only now
                raise HTTPError(422, f"query parameter output: unknown output(s) {unknown}; the model answers "
                                f"{list(outputs)}")
            outputs = {n: outputs[n] for n in wanted}
        elif PROBABILITIES in outputs:  # only what was asked for
            outputs = {n: a for n, a in outputs.items() if n != PROBABILITIES}
        return json_response({"predictions": _mlflow.predictions(outputs)})

    # -- feedback ---------------------------------------------------------------------------
    async def feedback(self, request: Request) -> Response:
        rid = request.scope["state"]["request_id"]
        try:
            name = request.path_params["name"]
            route = self.fleet.route(name)
            require_json(request)
            body = parse_json(await read_body(request, self.config.max_body_bytes, self.config.body_timeout_s))
            entries = _feedback.parse_entries(body)
            if self.writer is None or self.requests is None:
                raise HTTPError(501, "feedback needs the prediction log; it is off (log_predictions = false)")
            answers = await self._answered(name, route, [e["request_id"] for e in entries])
            records = [_feedback.record(name, e, i, a, self._signature(name, a)) for i, (e, a)
                       in enumerate(zip(entries, answers, strict=True))]
            total = sum(r.rows for r in records)
            if total > self.writer.buffer_rows:
                raise HTTPError(413, f"{total} labels are more than the prediction log buffers at once "
                                f"({self.writer.buffer_rows}, log_buffer_rows); send them in smaller parts")
            if not self.writer.add_all(records):
                raise HTTPError(503, "the prediction log buffer is full; retry later", headers={"retry-after": "1"})
        except HTTPError as exc:
            return error_response(exc, rid)
        return json_response({"accepted": total, "versions": sorted({r.version for r in records})})

    async def _answered(self, name: str, route: Any, rids: list[str]) -> list[_feedback.Answered | None]:
        assert self.requests is not None
        index = self.requests
        found = [index.cached(name, r) for r in rids]
        if all(found):
            return found
        shadows = frozenset(d.version for d in (route.shadow,) if d is not None)
        return await asyncio.to_thread(lambda: [f or index.lookup(name, r, shadows) for f, r in zip(found, rids)])

    def _signature(self, name: str, answered: _feedback.Answered | None) -> Any:
        route = self.fleet.route(name)
        dep = next((d for d in route.deployments() if answered and d.version == answered.version), route.champion)
        return dep.signature

    # -- metadata and health ------------------------------------------------------------------
    async def model_metadata(self, request: Request) -> Response:
        try:
            name, version = request.path_params["name"], request.path_params.get("version")
            dep = self.fleet.version(name, version) if version else self.fleet.route(name).champion
            versions = [d.version for d in self.fleet.route(name).deployments()]
            return json_response(_oip.metadata(name, versions, dep.flavor, dep.signature))
        except HTTPError as exc:
            return error_response(exc, request.scope["state"]["request_id"])

    async def model_ready(self, request: Request) -> Response:
        try:
            name, version = request.path_params["name"], request.path_params.get("version")
            _ = self.fleet.version(name, version) if version else self.fleet.route(name)
        except HTTPError as exc:
            return error_response(exc, request.scope["state"]["request_id"])
        return json_response({"name": name, "ready": self.ready})

    async def live(self, request: Request) -> Response:
        return json_response({"live": True})

    async def server_ready(self, request: Request) -> Response:
        return json_response({"ready": self.ready}, 200 if self.ready else 503)

    async def server_metadata(self, request: Request) -> Response:
        return json_response({"name": "conveyor", "version": __version__, "extensions": ["feedback"]})

    async def models(self, request: Request) -> Response:
        return json_response({"models": list(self.fleet.order)})

    async def ping(self, request: Request) -> Response:
        return PlainTextResponse("\n", 200 if self.ready else 503)

    async def version(self, request: Request) -> Response:
        return PlainTextResponse(__version__)

    async def prometheus(self, request: Request) -> Response:
        return Response(self.metrics.render(), headers={"content-type": METRICS_CONTENT_TYPE})


async def _every(seconds: float, action: Any) -> None:
    while True:
        await asyncio.sleep(seconds)
        action()


def create_app(
    models: Sequence[str | ServedModel],
    *,
    canary: Sequence[str | tuple[ServedModel, float]] = (),
    shadow: Sequence[str | ServedModel] = (),
    config: ServingConfig | None = None,
    source: ModelSource | None = None,
    tracker: Any = None,
    follow: bool = False,
    metrics_dir: str | None = None,
) -> Starlette:
    """The inference server as an ASGI application.

    ``models`` are registry references (``models:/name@champion``; loaded through
    ``source``, by default the registry of ``tracker``) or already loaded
    :class:`ServedModel` objects. ``canary`` entries are ``"name@alias:percent"`` strings
    or ``(ServedModel, percent)``; ``shadow`` entries get a copy of every request of their
    model name. The prediction log goes to ``tracker``'s stores (default: the module-level
    tracker) unless ``config.log_predictions`` is false. ``metrics_dir`` is the
    prometheus_client multiprocess folder shared by several worker processes (``run``
    sets it up; ``PROMETHEUS_MULTIPROC_DIR`` must name it before the workers start).

    Example::

        >>> app = create_app(["models:/iris@champion"], canary=["iris@challenger:10"])  # doctest: +SKIP
        >>> uvicorn.run(app, host="127.0.0.1", port=8080)                                # doctest: +SKIP
    """
    from conveyor.serving._source import RegistrySource

    config = config or ServingConfig()
    metrics = Metrics(metrics_dir)
    fleet = Fleet(metrics, config)
    needs_source = any(isinstance(m, str) for m in (*models, *canary, *shadow)) or follow
    if source is None and needs_source:
        source = RegistrySource(tracker)

    def load(ref: str) -> ServedModel:
        assert source is not None
        return source.load(model_uri(ref))

    for m in models:
        fleet.add(load(m) if isinstance(m, str) else m)
    for c in canary:
        if isinstance(c, str):
            spec = CanarySpec.parse(c)
            fleet.add(load(spec.ref), "canary", spec.percent)
        else:
            fleet.add(c[0], "canary", c[1])
    for s in shadow:
        fleet.add(load(s) if isinstance(s, str) else s, "shadow")
    if not fleet.order:
        raise InvalidInput("no model to serve", field="models", hint="name at least one, e.g. models:/iris@champion")

    writer = requests = None
    if config.log_predictions:
        if tracker is None:
            from conveyor.tracking import get_tracker

            tracker = get_tracker()
        writer = LogWriter(tracker.store, tracker.blobs, flush_s=config.log_flush_s, flush_rows=config.log_flush_rows,
                           buffer_rows=config.log_buffer_rows, sample_rate=config.log_sample_rate,
                           spool_dir=getattr(tracker, "spool_dir", None))
        requests = _feedback.RequestIndex(tracker.store, tracker.blobs, max_age_s=config.feedback_max_age_s)
    server = Server(fleet, config, metrics, writer, source, follow, requests)
    return _starlette(server)


def _starlette(server: Server) -> Starlette:
    from conveyor.serving._openapi import docs_page, openapi_document

    s = server
    post, get = ["POST"], ["GET"]
    routes = [
        # the two hot routes first: Starlette tries routes in order
        Path("/v2/models/{name}/infer", s.infer, methods=post),
        Path("/invocations", s.invocations, methods=post),
        Path("/v2/health/live", s.live, methods=get),
        Path("/v2/health/ready", s.server_ready, methods=get),
        Path("/v2", s.server_metadata, methods=get),
        Path("/v2/models", s.models, methods=get),
        Path("/v2/models/{name}/versions/{version}/infer", s.infer, methods=post),
        Path("/v2/models/{name}/feedback", s.feedback, methods=post),
        Path("/v2/models/{name}/ready", s.model_ready, methods=get),
        Path("/v2/models/{name}/versions/{version}/ready", s.model_ready, methods=get),
        Path("/v2/models/{name}/versions/{version}", s.model_metadata, methods=get),
        Path("/v2/models/{name}", s.model_metadata, methods=get),
        Path("/ping", s.ping, methods=get),
        Path("/health", s.ping, methods=get),
        Path("/version", s.version, methods=get),
        Path("/metrics", s.prometheus, methods=get),
        Path("/openapi.json", lambda r: json_response(openapi_document(s.fleet)), methods=get),
        Path("/docs", lambda r: docs_page(), methods=get),    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
        if status == 405:
            detail = f"method {request.method} is not allowed on {request.url.path}"
        elif status == 404:
            detail = f"no route {request.url.path}; see /docs"
        headers = exc.headers if isinstance(exc, HTTPException) else None  # 405 carries Allow (RFC 9110)
        return error_response(HTTPError(status, str(detail), headers=headers),
                              request.scope.get("state", {}).get("request_id"))

    app = Starlette(routes=routes, lifespan=server.lifespan,
                    exception_handlers={HTTPException: http_error, Exception: http_error})
    app.state.server = server
    app.add_middleware(AccessLog, enabled=server.config.access_log)
    return app
