"""Factories for monitoring tests: frames with a controllable shift, a monitor config, and a
real HTTP webhook receiver on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pandas as pd
import pytest


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
