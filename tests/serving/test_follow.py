"""Models from the real registry: serving by alias, --follow swapping versions under load
with zero failed requests, and aliases that point nowhere."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from conftest import client, live_server, run


@pytest.fixture
def registered(tracker: Any, tmp_path: Path) -> Callable[[str, float], int]:
    """Register a scikit-learn model answering ``factor · x`` as the next version of ``name``."""
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    import conveyor.models
    from conveyor.registry import Registry

    registry = Registry(tracker)

    def make(name: str, factor: float) -> int:
        x = pd.DataFrame({"x": np.arange(10, dtype=float)})
        model = LinearRegression().fit(x, factor * x["x"])
        folder = tmp_path / f"{name}-{factor}"
        conveyor.models.save(model, folder, input_example=x[:3])
        run_ = tracker.create_run("serving-tests")
        tracker.log_artifacts(run_.id, folder, "model")
        tracker.end_run(run_.id, "FINISHED")
        return int(registry.register(f"runs:/{run_.id}/model", name).version)

    return make


def _infer(value: float) -> dict[str, Any]:
    return {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [value]}]}


def test_serves_registry_alias_and_follows_it_under_load(make_app: Any, tracker: Any, registered: Any) -> None:
    from conveyor.registry import Registry

    registry = Registry(tracker)
    v1, v2 = registered("lin", 2.0), registered("lin", 3.0)
    registry.set_alias("lin", "champion", v1)
    app = make_app("models:/lin@champion", tracker=tracker, follow=True, follow_interval_s=0.1)
    failures: list[str] = []
    seen: dict[str, int] = {}
    stop = threading.Event()

    def load(url: str) -> None:
        with httpx.Client(base_url=url) as c:
            i = 0
            while not stop.is_set():
                i += 1
                r = c.post("/v2/models/lin/infer", json=_infer(i))
                if r.status_code != 200:
                    failures.append(r.text)
                    continue
                body = r.json()
                factor = 2.0 if body["model_version"] == str(v1) else 3.0
                if abs(body["outputs"][0]["data"][0] - factor * i) > 1e-6:
                    failures.append(f"wrong answer {body}")
                seen[body["model_version"]] = seen.get(body["model_version"], 0) + 1

    with live_server(app) as url:
        clients = [threading.Thread(target=load, args=(url,)) for _ in range(4)]
        for t in clients:
            t.start()
        time.sleep(0.5)
        registry.set_alias("lin", "champion", v2)
        deadline = time.monotonic() + 20
        while seen.get(str(v2), 0) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        for t in clients:
            t.join()
    assert failures == []
    assert seen.get(str(v1), 0) > 0 and seen.get(str(v2), 0) >= 20


def test_alias_that_points_nowhere(make_app: Any, tracker: Any, registered: Any) -> None:
    from conveyor.errors import NotFound
    from conveyor.registry import Registry

    registry = Registry(tracker)
    registry.set_alias("lin", "champion", registered("lin", 2.0))
    with pytest.raises(NotFound, match="lin@nowhere"):
        make_app("models:/lin@nowhere", tracker=tracker)
    with pytest.raises(NotFound):
        make_app("models:/ghost@champion", tracker=tracker)

    # While serving, the alias disappears: the server keeps the version it has.
    app = make_app("models:/lin@champion", tracker=tracker, follow=True, follow_interval_s=0.05)

    async def go() -> None:
        import asyncio

        async with client(app) as c:
            registry.delete_alias("lin", "champion")
            await asyncio.sleep(0.3)
            r = await c.post("/v2/models/lin/infer", json=_infer(4))
            assert r.status_code == 200 and abs(r.json()["outputs"][0]["data"][0] - 8.0) < 1e-6

    run(go())
