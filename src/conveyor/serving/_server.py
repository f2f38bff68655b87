"""Run the app under uvicorn: one process, or ``workers`` processes sharing the socket."""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any, cast

from conveyor.entities import Predictor

SPEC_ENV = "CONVEYOR_SERVE_SPEC"


def configure_logging(level: str = "info") -> None:
    """Access lines (already JSON) and server messages on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in ("conveyor.serving.access", "conveyor.serving"):
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
                      follow=bool(spec.get("follow")))


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
) -> None:
    """Serve ``app`` (one process) or, for ``workers > 1``, the app described by ``spec``
    (``{"models": [...], "canary": [...], "shadow": [...], "config": {...}, "root": dir}``)
    in each worker. ``nodelay=False`` and ``loop="asyncio"`` reproduce plain uvicorn (the
    benchmark's comparison); uvloop, when installed, sets TCP_NODELAY by itself. Binds 127.0.0.1 unless told otherwise; SIGTERM drains in-flight requests
    and flushes the prediction log before exiting.

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
    if workers > 1 or app is None:
        if spec is None:
            raise ValueError("workers > 1 needs a spec (each worker builds its own app)")
        os.environ[SPEC_ENV] = json.dumps(spec)
        uvicorn.run("conveyor.serving._server:worker_app", factory=True, workers=workers, **kwargs)
    else:
        uvicorn.run(app, **kwargs)
