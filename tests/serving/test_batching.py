"""Adaptive micro-batching: answers never mix up, batches form under load, a full queue
answers 503 with Retry-After."""

from __future__ import annotations

import asyncio
import concurrent.futures
import random
from typing import Any

import httpx

from conftest import Doubler, client, live_server, run


def test_many_concurrent_distinct_requests_get_their_own_answers(make_app: Any) -> None:
    model = Doubler(delay=0.005)
    app = make_app(("d", model), max_batch_size=32, max_wait_ms=5)
    rng = random.Random(7)
    requests = [[rng.uniform(-1e6, 1e6) for _ in range(rng.randint(1, 4))] for _ in range(300)]

    async def one(c: httpx.AsyncClient, values: list[float], i: int) -> None:
        if i % 2:
            r = await c.post("/invocations", json={"dataframe_split": {"columns": ["x"], "data": [[v] for v in values]}})
            assert r.json()["predictions"] == [2 * v for v in values]
        else:
            r = await c.post("/v2/models/d/infer", json={"id": f"r{i}", "inputs": [
                {"name": "x", "shape": [len(values)], "datatype": "FP64", "data": values}]})
            body = r.json()
            assert body["id"] == f"r{i}" and body["outputs"][0]["data"] == [2 * v for v in values]

    async def go() -> None:
        async with client(app) as c:
            await asyncio.gather(*(one(c, values, i) for i, values in enumerate(requests)))

    run(go())
    assert max(model.calls) > 1, "requests were never batched"
    assert sum(model.calls) == sum(len(r) for r in requests)
    assert max(model.calls) <= 32 + 3  # a batch is closed before it passes max_batch_size


def test_concurrent_distinct_requests_over_real_http(make_app: Any, bc_model: Any, bc_data: Any) -> None:
    app = make_app(("bc", bc_model), max_wait_ms=2)
    frame = bc_data.data.iloc[:160]
    expected = bc_model.predict(frame).tolist()
    with live_server(app) as url, httpx.Client(base_url=url) as c:

        def ask(i: int) -> tuple[int, Any]:
            row = frame.iloc[i:i + 1]
            body = {"dataframe_split": {"columns": list(row.columns), "data": row.to_numpy().tolist()}}
            return i, c.post("/invocations", json=body).json()["predictions"][0]

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            for i, answer in pool.map(ask, range(len(frame))):
                assert answer == expected[i]
        metrics = c.get("/metrics").text
    assert 'conveyor_batch_size_rows_count{model="bc",version="1"}' in metrics


def test_without_batching_each_request_is_its_own_predict(make_app: Any) -> None:
    model = Doubler(delay=0.002)
    app = make_app(("d", model), batching=False)

    async def go() -> None:
        async with client(app) as c:
            answers = await asyncio.gather(*(c.post("/invocations", json={"instances": [v]}) for v in range(40)))
            assert [a.json()["predictions"][0] for a in answers] == [2.0 * v for v in range(40)]

    run(go())
    assert model.calls == [1] * 40


def test_full_queue_answers_503_with_retry_after(make_app: Any) -> None:
    app = make_app(("d", Doubler(delay=0.2)), queue_size=2, max_batch_size=1)

    async def go() -> None:
        async with client(app) as c:
            answers = await asyncio.gather(*(c.post("/invocations", json={"instances": [v]}) for v in range(8)))
            codes = sorted(a.status_code for a in answers)
            assert 200 in codes and 503 in codes and set(codes) <= {200, 503}
            busy = next(a for a in answers if a.status_code == 503)
            assert busy.headers["retry-after"] == "1" and "busy" in busy.json()["error"]

    run(go())
