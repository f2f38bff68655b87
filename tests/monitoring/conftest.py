"""Factories for monitoring tests: frames with a controllable shift, a monitor config, and a
real HTTP webhook receiver on 127.0.0.1.

The tests that use the stores run in both modes (``mode``): embedded (the tracker opens the
stores) and remote (a ``RemoteTracker`` talks to a real ``conveyor server`` over them, which
evaluates, keeps the retraining lease and fires the webhooks). Test data and direct checks
go through ``server_side`` (the server's own embedded tracker in remote mode); tests that
need what cannot cross the wire (a custom reader) ask for ``embedded_only``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from fixtures.remote import mode_project, mode_tracker


@pytest.fixture
def tracker(mode: str, store: Any, blobs: Any, tmp_path: Path) -> Iterator[Any]:
    """A tracker over the parametrized store: embedded, or remote through a live server
    (``tracker.server_tracker`` opens the stores in both modes)."""
    yield from mode_tracker(mode, store, blobs, tmp_path / "spool")


@pytest.fixture
def server_side(tracker: Any) -> Any:
    """The embedded tracker over the stores (the server's in remote mode): test data, checks."""
    return getattr(tracker, "server_tracker", tracker)


@pytest.fixture
def project(mode: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A fresh project folder as the working directory (fixtures.remote.mode_project)."""
    yield from mode_project(mode, tmp_path, monkeypatch)


@pytest.fixture
def make_frame() -> Callable[..., pd.DataFrame]:
    def make(n: int = 1500, shift: float = 0.0, seed: int = 0, label: bool = True) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        age = rng.normal(40 + 15 * shift, 10, n)
        plan = rng.choice(["basic", "pro", "team"], n, p=[0.5 - 0.3 * min(shift, 1), 0.3, 0.2 + 0.3 * min(shift, 1)])
        frame = pd.DataFrame({"age": age, "plan": plan})
        if label:
            frame["churned"] = (age > 45).astype(int)
        return frame

    return make


@pytest.fixture
def monitor_config() -> Callable[..., Any]:
    from conveyor.monitoring import MonitorConfig

    def make(**overrides: Any) -> MonitorConfig:
        values: dict[str, Any] = {"name": "churn-watch", "model": "churn", "reference": "data:/train@1",
                                  "target": "churned", "rules": ["drift_share > 0.3"]}
        return MonitorConfig(**{**values, **overrides})

    return make


class Receiver:
    """Records POSTed JSON; answers ``statuses`` in turn (then 200); can hold requests."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.release = threading.Event()
        self.release.set()
        self.url = ""


@pytest.fixture
def webhook() -> Iterator[Receiver]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server API)
            receiver.release.wait(10)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            receiver.posts.append(json.loads(body))
            status = receiver.statuses.pop(0) if receiver.statuses else 200
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    receiver.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def dead_url() -> str:
    """A 127.0.0.1 URL where nothing listens (the port was just freed)."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/hook"


@pytest.fixture
def stores(mode: str, project: Any, tmp_path: Any) -> Iterator[Any]:
    """With ``project``: an embedded tracker on the stores — the project's, or in remote mode
    the server's (the folder ``fixtures.remote.mode_project`` started it over): test data, checks."""
    from conveyor.settings import Settings
    from conveyor.tracking import Tracker, get_tracker

    if mode == "embedded":
        yield get_tracker()
        return
    opened = Tracker.from_settings(Settings.load(tmp_path / "server", env={}), create=False, remote=False)
    yield opened
    opened.close()
