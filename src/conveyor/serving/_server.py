"""Run the app under uvicorn: one process, or ``workers`` processes sharing the socket."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
from typing import Any, cast

from conveyor.entities import Predictor

SPEC_ENV = "CONVEYOR_SERVE_SPEC"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: uvicorn's exit status when the server could not start
STARTUP_FAILURE = 3


def configure_logging(level: str = "info", logger: str = "conveyor.serving") -> None:
    """Access lines (already JSON) and server messages of ``logger`` (and its ``.access``
    child) on stderr; the inference server and the team server share it."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in (f"{logger}.access", logger):
        logger = logging.getLogger(name)
        if not logger.handlers:
            logger.addHandler(handler)
        logger.setLevel(level.upper())
        logger.propagate = False


def worker_app() -> Any:
    """The app of one worker process, built from the spec the parent put in the environment."""
    from conveyor.serving._app import create_app
    from conveyor.serving._config import ServingConfig

    spec = json.loads(os.environ[SPEC_ENV])
    configure_logging(spec.get("log_level", "info"))
    if spec.get("trust") is not None:  # the parent's [models] trusted_modules + --trust
        from conveyor.models import TrustPolicy, set_trust

        set_trust(TrustPolicy(tuple(spec["trust"])))
    tracker = None
    if spec.get("root"):
        from conveyor.settings import Settings
        from conveyor.tracking import Tracker, set_tracker

        tracker = Tracker.from_settings(Settings.load(spec["root"]), create=bool(spec.get("folders")))
        set_tracker(tracker)
    served = []
    if spec.get("folders"):
        from conveyor.models import load
        from conveyor.serving._deploy import ServedModel

        served = [ServedModel(f["name"], cast(Predictor, load(f["path"])), f["version"]) for f in spec["folders"]]
    return create_app([*spec["models"], *served], canary=spec.get("canary", []), shadow=spec.get("shadow", []),
                      config=ServingConfig.model_validate(spec.get("config", {})), tracker=tracker,
                      follow=bool(spec.get("follow")), metrics_dir=spec.get("metrics_dir"))


def run(
    app: Any = None,
    *,
    spec: dict[str, Any] | None = None,
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = 1,
    nodelay: bool = True,
    log_level: str = "info",
    graceful_timeout: float = 30.0,
    loop: str = "auto",
    header_timeout_s: float = 10.0,
) -> None:
    """Serve ``app`` (one process) or, for ``workers > 1``, the app described by ``spec``
    (``{"models": [...], "canary": [...], "shadow": [...], "config": {...}, "root": dir}``)
    in each worker. ``nodelay=False`` and ``loop="asyncio"`` reproduce plain uvicorn (the
    benchmark's comparison); uvloop, when installed, sets TCP_NODELAY by itself. Binds
    127.0.0.1 unless told otherwise; SIGTERM drains in-flight requests and flushes the
    prediction log before exiting. A connection whose request headers take longer than
    ``header_timeout_s`` gets a 408 and is closed. With several workers, ``/metrics``
    answers for all of them (prometheus_client's multiprocess mode, in a temporary folder).

    Example::

        >>> run(create_app([ServedModel("iris", model)]), port=8080)  # doctest: +SKIP
    """
    import uvicorn

    from conveyor.serving._nodelay import NoDelayProtocol

    configure_logging(log_level)
    kwargs: dict[str, Any] = {
        "host": host, "port": port, "log_level": log_level, "access_log": False, "lifespan": "on",
        "timeout_graceful_shutdown": graceful_timeout, "http": NoDelayProtocol if nodelay else "auto", "loop": loop,
    }
    if workers <= 1 and app is not None:
        _serve(uvicorn.Config(app, **kwargs), header_timeout_s)
        return
    if spec is None:
        raise ValueError("workers > 1 needs a spec (each worker builds its own app)")
    # prometheus_client's multiprocess mode: every worker writes its metrics under this
    # folder, and /metrics adds them up. The variable must be set before a worker imports
    # prometheus_client, so it is set here, in the parent, and the workers inherit it.
    metrics_dir = tempfile.mkdtemp(prefix="conveyor-metrics-")
    saved = {k: os.environ.get(k) for k in (SPEC_ENV, MULTIPROC_ENV)}
    os.environ[SPEC_ENV] = json.dumps({**spec, "metrics_dir": metrics_dir})
    os.environ[MULTIPROC_ENV] = metrics_dir
    try:
        config = uvicorn.Config("conveyor.serving._server:worker_app", factory=True, workers=workers, **kwargs)
        _serve(config, header_timeout_s)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _serve(config: Any, header_timeout_s: float) -> None:
    """What ``uvicorn.run`` does, with the header deadline on the config (the workers get
    the config pickled, attribute included)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config.conveyor_header_timeout_s = header_timeout_s
    if config.workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return
    server = uvicorn.Server(config)
    server.run()
    if not server.started:
        raise SystemExit(STARTUP_FAILURE)
