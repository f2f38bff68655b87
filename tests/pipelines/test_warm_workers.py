"""Steps run in processes forked from a warm server (issue 10, build 6): the heavy modules
are already imported, yet every step is its own process, isolated from the other steps and
from the coordinator, and sees the project's code as it is on disk now."""

from __future__ import annotations

import os
import sys
from typing import Any

from conveyor.pipelines import run

FLOW = """
import os
import sys
import shared_state_{tag} as shared

@step(cache=False)
def first() -> dict:
    warm = "sklearn.linear_model" in sys.modules  # before this step imports it
    from sklearn.linear_model import LogisticRegression
    shared.COUNTER.append("first")
    os.environ["CONVEYOR_TEST_LEAK"] = "from a step"
    return {{"pid": os.getpid(), "parent": os.getppid(), "warm": warm, "counter": list(shared.COUNTER),
             "cwd": os.getcwd(), "env": os.environ.get("WARM_WORKER_TEST_SET_LATER"), "version": shared.VERSION}}

@step(cache=False)
def second(previous: dict) -> dict:
    return {{"pid": os.getpid(), "counter": list(shared.COUNTER), "leak": os.environ.get("CONVEYOR_TEST_LEAK"),
             "version": shared.VERSION}}

@pipeline
def flow():
    second(first())
"""


def test_steps_are_isolated_warm_and_fresh(pipes: Any, local_tracker: Any, monkeypatch: Any) -> None:
    tag = os.urandom(4).hex()
    pipes("COUNTER = []\nVERSION = 1\n", name=f"shared_state_{tag}")
    module = pipes(FLOW.format(tag=tag))
    monkeypatch.setenv("WARM_WORKER_TEST_SET_LATER", "seen")  # after the server may have started
    result = run(module.flow, tracker=local_tracker)
    assert result.ok, {n: s.error for n, s in result.steps.items()}
    first, second = result.load("first"), result.load("second")
    assert first["pid"] != second["pid"] != os.getpid() and first["pid"] != os.getpid()
    assert first["warm"], "the step process did not come from a server with scikit-learn imported"
    assert first["counter"] == ["first"] and second["counter"] == []  # no state shared between steps
    assert second["leak"] is None and "CONVEYOR_TEST_LEAK" not in os.environ  # nor with the coordinator
    assert sys.modules[f"shared_state_{tag}"].COUNTER == []
    assert first["cwd"] == os.getcwd() and first["env"] == "seen"
    # an edited project module is what the next run's steps import (the server never imports it)
    pipes("COUNTER = []\nVERSION = 22\n", name=f"shared_state_{tag}")
    again = run(module.flow, tracker=local_tracker)
    assert again.load("first")["version"] == 22 and again.load("second")["version"] == 22
