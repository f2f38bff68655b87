"""Run the server under uvicorn: one process, or ``workers`` processes sharing the socket.

Each worker opens its own stores from the project folder (a connection pool is not
shared across processes). Every connection gets TCP_NODELAY (``conveyor.serving``'s
protocol), so keep-alive answers never wait on Nagle's algorithm, whatever the worker
count. SIGTERM/SIGINT stop accepting, drain in-flight requests (up to
``graceful_timeout`` seconds), then close the stores.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

#: The parent hands each worker its project through the documented ``CONVEYOR_ROOT`` and
#: its log level through this private variable.
LOG_LEVEL_ENV = "CONVEYOR_SERVER_WORKER_LOG_LEVEL"
AUTH_ENV = "CONVEYOR_SERVER_WORKER_AUTH"


def configure_logging(level: str = "info") -> None:
    """Access lines (JSON) and server messages on stderr, as the inference server does."""
    from conveyor.serving._server import configure_logging as configure

    configure(level, "conveyor.server")


def open_tracker(root: str | Path | None = None) -> Any:
    """The project's tracker over existing stores; an outdated schema raises ``SchemaOutdated``
    naming ``conveyor db upgrade``."""
    from conveyor.settings import Settings
    from conveyor.tracking import Tracker

    settings = Settings.load(root) if root is not None else Settings.load()
    return Tracker.from_settings(settings, create=False, remote=False)


def worker_app() -> Any:
    """The app of one worker process (uvicorn's factory), for the project the parent named."""
    from conveyor.server._app import create_app

    from conveyor.server._tokens import TokenStore
    from conveyor.settings import Settings

    configure_logging(os.environ.get(LOG_LEVEL_ENV, "info"))
    tokens = TokenStore.of(Settings.load().conveyor_dir) if os.environ.get(AUTH_ENV) == "1" else None
    return create_app(open_tracker(), close_tracker=True, tokens=tokens)


def run(
    app: Any = None,
    *,
    root: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = 5000,
    workers: int = 1,
    log_level: str = "info",
    graceful_timeout: float = 30.0,
    auth: bool = False,
) -> None:
    """Serve ``app`` in this process, or (``workers > 1``) an app per worker for ``root``
    (``auth``: each worker requires the project's tokens)."""
    import uvicorn

    from conveyor.serving._nodelay import NoDelayProtocol

    configure_logging(log_level)
    kwargs: dict[str, Any] = {
        "host": host, "port": port, "log_level": log_level, "access_log": False, "lifespan": "on",
        "timeout_graceful_shutdown": graceful_timeout, "http": NoDelayProtocol,
    }
    if workers > 1:
        os.environ["CONVEYOR_ROOT"] = str(Path(root or ".").resolve())
        os.environ[LOG_LEVEL_ENV] = log_level
        os.environ[AUTH_ENV] = "1" if auth else "0"
        uvicorn.run("conveyor.server._serve:worker_app", factory=True, workers=workers, **kwargs)
    else:
        uvicorn.run(app, **kwargs)
