"""The prediction log: Parquet objects indexed by model, version and hour; sampling,
bounded buffer, flush on shutdown; feedback stored beside it and joined back."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest

from conftest import Doubler, client, run
from conveyor.serving import read_feedback, read_prediction_log


def test_log_holds_inputs_outputs_version_latency_and_request_ids(make_app: Any, tracker: Any) -> None:
    from conveyor.store import ServingLogRepo

    app = make_app(("d", Doubler(), "4"), tracker=tracker)

    async def go() -> None:
        async with client(app) as c:
            await c.post("/invocations", json={"instances": [1, 2]}, headers={"x-request-id": "a"})
            await c.post("/v2/models/d/infer", json={"id": "b", "inputs": [
                {"name": "x", "shape": [1], "datatype": "FP64", "data": [5]}]})

    run(go())
    log = read_prediction_log("d", tracker=tracker)
    assert list(log.columns[:6]) == ["request_id", "row", "timestamp", "model", "version", "latency_ms"]
    assert log[["request_id", "row", "x", "y"]].values.tolist() == [["a", 0, 1.0, 2.0], ["a", 1, 2.0, 4.0],
                                                                     ["b", 0, 5.0, 10.0]]
    assert set(log.version) == {"4"} and (log.latency_ms > 0).all()
    assert str(log.timestamp.dt.tz) == "UTC"
    with tracker.store.read() as conn:
        files = ServingLogRepo().find(conn, "predictions", "d", "4")
    assert sum(f.rows for f in files) == 3 and all(f.hour % 3_600_000 == 0 for f in files)
    assert all(tracker.blobs.exists(__import__("conveyor.blobs", fromlist=["Digest"]).Digest.parse(f.digest))
               for f in files)


def test_time_filters_and_versions(make_app: Any, tracker: Any) -> None:
    app = make_app(("d", Doubler(), "1"), tracker=tracker)

    async def go() -> None:
        async with client(app) as c:
            await c.post("/invocations", json={"instances": [1]})

    run(go())
    now = datetime.now(timezone.utc)
    assert len(read_prediction_log("d", since=now - timedelta(minutes=5), tracker=tracker)) == 1
    assert len(read_prediction_log("d", since=now + timedelta(minutes=5), tracker=tracker)) == 0
    assert len(read_prediction_log("d", until=(now - timedelta(hours=2)).isoformat(), tracker=tracker)) == 0
    assert len(read_prediction_log("d", version=2, tracker=tracker)) == 0
    assert len(read_prediction_log("elsewhere", tracker=tracker)) == 0


@pytest.mark.parametrize("rate, expected", [(0.0, 0), (1.0, 30)])
def test_sampling_rate(make_app: Any, tracker: Any, rate: float, expected: int) -> None:
    app = make_app(("d", Doubler()), tracker=tracker, log_sample_rate=rate)

    async def go() -> None:
        async with client(app) as c:
            await asyncio.gather(*(c.post("/invocations", json={"instances": [v]}) for v in range(30)))

    run(go())
    assert len(read_prediction_log("d", tracker=tracker)) == expected


def test_bounded_buffer_drops_and_counts_instead_of_growing(make_app: Any, tracker: Any) -> None:
    app = make_app(("d", Doubler()), tracker=tracker, log_buffer_rows=5, log_flush_s=60, log_flush_rows=1000)

    async def go() -> None:
        async with client(app) as c:
            for v in range(8):
                assert (await c.post("/invocations", json={"instances": [v]})).status_code == 200
            metrics = (await c.get("/metrics")).text
            assert "\nconveyor_prediction_log_dropped_total 3.0\n" in metrics

    run(go())
    assert len(read_prediction_log("d", tracker=tracker)) == 5  # what fitted was flushed at shutdown


def test_feedback_is_stored_and_joined(make_app: Any, tracker: Any) -> None:
    app = make_app(("d", Doubler()), tracker=tracker)

    async def go() -> None:
        async with client(app) as c:
            await c.post("/invocations", json={"instances": [1, 2]}, headers={"x-request-id": "r1"})
            await c.post("/invocations", json={"instances": [3]}, headers={"x-request-id": "r2"})
            r = await c.post("/v2/models/d/feedback", json={"request_id": "r1", "labels": [2.5, 4.0]})
            assert r.json() == {"accepted": 2, "versions": ["1"]}
            r = await c.post("/v2/models/d/feedback", json={"feedback": [{"request_id": "r2", "label": 6.5}]})
            assert r.json() == {"accepted": 1, "versions": ["1"]}
            assert (await c.post("/v2/models/nope/feedback", json={"request_id": "r", "label": 1})).status_code == 404

    run(go())
    labels = read_feedback("d", tracker=tracker)
    assert labels[["request_id", "row", "label"]].values.tolist() == [["r1", 0, 2.5], ["r1", 1, 4.0], ["r2", 0, 6.5]]
    assert set(labels.version) == {"1"}
    joined = read_prediction_log("d", with_feedback=True, tracker=tracker)
    assert joined[["request_id", "y", "label"]].values.tolist() == [["r1", 2.0, 2.5], ["r1", 4.0, 4.0],
                                                                     ["r2", 6.0, 6.5]]


def test_failed_store_write_keeps_records_for_the_next_flush(tracker: Any) -> None:
    from conveyor.serving._predlog import LogWriter, Record

    class Flaky:
        """A blob store that fails once, then stores for real."""

        def __init__(self, real: Any) -> None:
            self.real, self.failures = real, 1

        def put_bytes(self, data: bytes) -> Any:
            if self.failures:
                self.failures -= 1
                raise OSError("disk full")
            return self.real.put_bytes(data)

    writer = LogWriter(tracker.store, Flaky(tracker.blobs))
    writer.add(Record("predictions", "f", "1", "r", 1_700_000_000_000, 1, {"x": np.array([1.0])},
                      {"y": np.array([2.0])}, 1.0))
    with pytest.raises(OSError):
        writer.flush()
    assert len(writer.flush()) == 1
    assert read_prediction_log("f", tracker=tracker).y.tolist() == [2.0]
