"""Serving fixtures: real scikit-learn model packages, small plain-Python predictors with
exact answers, in-process clients (httpx ASGITransport, lifespan run) and real uvicorn
servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from conveyor.entities import ColumnSpec, Signature


class Doubler:
    """Predicts 2·x for a single float column ``x`` (exact, so answers can be matched to
    requests). ``delay`` makes predict slow; x == 666 makes it raise."""

    flavor = "python"
    signature = Signature((ColumnSpec("x", "float64"),), (ColumnSpec("y", "float64"),))

    def __init__(self, delay: float = 0.0, factor: float = 2.0) -> None:
        self.delay = delay
        self.factor = factor
        self.calls: list[int] = []

    def predict(self, data: Any) -> Any:
        # the Predictor protocol: a DataFrame, or an array with columns in signature order
        x = np.asarray(data[:, 0] if isinstance(data, np.ndarray) else data["x"], dtype=float)
        self.calls.append(len(x))
        if self.delay:
            time.sleep(self.delay)
        if (x == 666).any():
            raise RuntimeError("the model cannot handle 666")
        return x * self.factor


@pytest.fixture(scope="session")
def bc_data() -> Any:
    from sklearn.datasets import load_breast_cancer

    return load_breast_cancer(as_frame=True)


@pytest.fixture(scope="session")
def bc_package(tmp_path_factory: pytest.TempPathFactory, bc_data: Any) -> Path:
    """A real conveyor.models package (scikit-learn logistic regression, breast-cancer data)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import conveyor.models

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(bc_data.data, bc_data.target)
    folder = tmp_path_factory.mktemp("pkg") / "bc"
    conveyor.models.save(model, folder, input_example=bc_data.data[:5])
    return folder


@pytest.fixture(scope="session")
def bc_model(bc_package: Path) -> Any:
    import conveyor.models

    return conveyor.models.load(bc_package)


@pytest.fixture
def make_app() -> Callable[..., Any]:
    """create_app with the prediction log off unless a tracker is given."""
    from conveyor.serving import ServedModel, ServingConfig, create_app

    def make(*models: Any, tracker: Any = None, canary: Any = (), shadow: Any = (), source: Any = None,
             follow: bool = False, **config: Any) -> Any:
        config.setdefault("log_predictions", tracker is not None)
        config.setdefault("log_flush_s", 0.05)
        served = [m if not isinstance(m, tuple) else ServedModel(*m) for m in models]
        return create_app(served, canary=canary, shadow=shadow, tracker=tracker, source=source, follow=follow,
                          config=ServingConfig(**config))

    return make


@contextlib.asynccontextmanager
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """In-process: the app's lifespan runs, requests go through httpx's ASGI transport."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://serving.test") as c:
            yield c


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def live_server(app: Any) -> Iterator[str]:
    """A real uvicorn server on 127.0.0.1 (TCP_NODELAY protocol) in a thread."""
    import uvicorn

    from conveyor.serving._nodelay import NoDelayProtocol

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", http=NoDelayProtocol,
                            lifespan="on", timeout_graceful_shutdown=10)
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def split_body(frame: Any) -> dict[str, Any]:
    return {"dataframe_split": {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}}
