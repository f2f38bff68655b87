"""One contract for executors, one suite: the local process pool and a real Ray cluster."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from conveyor.errors import ServiceUnavailable
from conveyor.pipelines import run
from conveyor.pipelines._executors import Executor, make_executor

FLOW = """
import os

@step(cpus=1)
def numbers(n: int = 4) -> list:
    print("pid", os.getpid())
    return list(range(n))

@step
def left(rows: list) -> int:
    return sum(rows)

@step
def right(rows: list) -> int:
    return len(rows)

@step(metrics=True)
def combine(a: int, b: int) -> dict:
    return {"mean": a / b}

@step(timeout=2)
def sleepy(rows: list) -> int:
    import time
    time.sleep(30)
    return 0

@step
def fails(rows: list) -> int:
    raise KeyError("missing-column")

@pipeline
def flow(n: int = 4, slow: bool = False, bad: bool = False):
    rows = numbers(n=n)
    combine(left(rows), right(rows))
    if slow:
        sleepy(rows)
    if bad:
        fails(rows)
"""


@pytest.fixture(params=["local", "local-fresh-interpreter", pytest.param("ray", marks=pytest.mark.ray)])
def executor(request: pytest.FixtureRequest) -> Iterator[Executor]:
    if request.param == "ray":
        engine = make_executor("ray", ray_address=request.getfixturevalue("ray_cluster"))
    elif request.param == "local-fresh-interpreter":  # where fork is not available
        from conveyor.pipelines._executors import LocalExecutor

        engine = LocalExecutor(max_workers=2, warm=False)
    else:
        engine = make_executor("local", max_workers=2)
    yield engine
    engine.close()


def test_contract_runs_the_dag_and_stores_outputs(executor: Executor, pipes: Any, local_tracker: Any) -> None:
    module = pipes(FLOW)
    result = run(module.flow, executor=executor, tracker=local_tracker)
    assert result.ok, result.steps
    assert result.load("left") == 6 and result.load("right") == 4
    assert local_tracker.get_run(result.run_id).metrics["mean"] == 1.5
    assert local_tracker.get_run(result.run_id).tags["conveyor.executor"] == executor.name
    log = local_tracker.read_artifact(result.steps["numbers"].run_id, "logs/step.log").decode()
    assert log.startswith("pid ")


def test_contract_caching_is_the_same_on_every_executor(executor: Executor, pipes: Any, local_tracker: Any) -> None:
    module = pipes(FLOW)
    run(module.flow, params={"n": 5}, tracker=local_tracker)  # local first
    again = run(module.flow, params={"n": 5}, executor=executor, tracker=local_tracker)
    assert sorted(again.cached) == ["combine", "left", "numbers", "right"]


def test_contract_failures_and_timeouts_are_reported(executor: Executor, pipes: Any, local_tracker: Any) -> None:
    module = pipes(FLOW)
    result = run(module.flow, params={"slow": True, "bad": True}, executor=executor, tracker=local_tracker)
    assert result.steps["sleepy"].status == "FAILED" and "timeout" in result.steps["sleepy"].error
    assert "missing-column" in result.steps["fails"].error
    assert result.steps["combine"].status == "FINISHED"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_ray_cluster_is_a_clear_error(pipes: Any, local_tracker: Any) -> None:
    module = pipes(FLOW)
    address = f"127.0.0.1:{_closed_port()}"
    with pytest.raises(ServiceUnavailable, match=f"no Ray cluster answers at {address}"):
        run(module.flow, executor="ray", ray_address=address, tracker=local_tracker)
    assert local_tracker.search_runs(output="runs") == []  # nothing started
