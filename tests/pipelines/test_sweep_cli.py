"""Sweeps, data set inputs with lineage, the CLI, and the quickstart stage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conveyor.errors import NotFound
from conveyor.pipelines import run, sweep

SWEEP = """
@step(metrics=True)
def score(C: float, penalty: str) -> dict:
    return {"f1": C * (2 if penalty == "l2" else 1)}

@pipeline
def flow(C: float = 1.0, penalty: str = "l2"):
    score(C=C, penalty=penalty)
"""


def test_sweep_runs_the_grid_and_ranks_it(pipes: Any, local_tracker: Any) -> None:
    module = pipes(SWEEP)
    result = sweep(module.flow, {"C": [0.1, 1.0, 10.0], "penalty": ["l1", "l2"]}, metric="f1", maximize=True,
                   tracker=local_tracker)
    assert len(result.points) == 6
    params, best_run, value = result.best
    assert params == {"C": 10.0, "penalty": "l2"} and value == 20.0
    assert [p[2] for p in result.points] == sorted((p[2] for p in result.points), reverse=True)
    tags = {local_tracker.get_run(r.run_id).tags["conveyor.sweep"] for _, r, _ in result.points}
    assert tags == {result.sweep_id}


def test_dataset_inputs_are_pinned_cached_and_in_the_lineage(pipes: Any, local_tracker: Any) -> None:
    import pandas as pd

    import conveyor.data as cd

    cd.add(pd.DataFrame({"x": [1, 2, 3]}), name="numbers", tracker=local_tracker)
    module = pipes("""
        @step
        def total(frame) -> int:
            return int(frame["x"].sum())

        @pipeline
        def flow(ref: str = "numbers"):
            total(cp.dataset(ref))
    """)
    first = run(module.flow, tracker=local_tracker)
    assert first.ok and first.load("total") == 6
    assert run(module.flow, tracker=local_tracker).cached == ["total"]
    graph = cd.lineage_graph(local_tracker, "data:/numbers@1", direction="down")
    readers = {str(e.downstream) for e in graph.downstream}
    assert f"runs:/{first.steps['total'].run_id}" in readers and f"runs:/{first.run_id}" in readers
    cd.add(pd.DataFrame({"x": [1, 2, 3, 4]}), name="numbers", tracker=local_tracker)
    changed = run(module.flow, tracker=local_tracker)
    assert changed.cached == [] and changed.load("total") == 10  # "numbers" now pins version 2
    with pytest.raises(NotFound):
        run(module.flow, params={"ref": "absent"}, tracker=local_tracker)


def test_cli_run_show_runs_and_sweep(pipes: Any, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from conveyor.cli import app

    module = pipes(SWEEP)
    ref = f"{module.__name__}:flow"
    runner = CliRunner()
    shown = runner.invoke(app, ["pipeline", "show", ref, "-p", "C=2"])
    assert shown.exit_code == 0, shown.output
    assert "score" in shown.output and "C=2.0" in shown.output
    first = runner.invoke(app, ["pipeline", "run", ref, "-p", "C=2", "-p", "penalty=l1"])
    assert first.exit_code == 0, first.output
    assert "0/1 steps cached" in first.output
    second = runner.invoke(app, ["pipeline", "run", ref, "-p", "C=2", "-p", "penalty=l1"])
    assert "↺ score" in second.output and "1/1 steps cached" in second.output
    listed = runner.invoke(app, ["pipeline", "runs", "--json"])
    rows = json.loads(listed.output)
    assert [r["cached"] for r in rows] == [1, 0]
    swept = runner.invoke(app, ["pipeline", "sweep", ref, "--grid", "C=0.1,1,10", "--grid", "penalty=l1,l2",
                                "--metric", "f1", "--maximize"])
    assert swept.exit_code == 0, swept.output
    assert 'best: {"C": 10.0, "penalty": "l2"}' in swept.output
    bad = runner.invoke(app, ["pipeline", "run", ref, "-p", "C=lots"])
    assert bad.exit_code == 2 and "'C' must be a float" in bad.output
    missing = runner.invoke(app, ["pipeline", "run", "no_such_module:flow"])
    assert missing.exit_code == 3
    unreachable = runner.invoke(app, ["pipeline", "run", ref, "--executor", "ray", "--ray-address", "127.0.0.1:1"])
    assert unreachable.exit_code == 4 and "no Ray cluster answers" in unreachable.output


@pytest.mark.slow
def test_quickstart_stage_shows_a_fully_cached_second_run(project: Path) -> None:
    from rich.console import Console

    from conveyor.quickstart._pipeline import stage
    from conveyor.quickstart._run import Story
    from conveyor.settings import Settings
    from conveyor.tracking import get_tracker

    console = Console(record=True, width=120)
    story = Story(project, Settings.load(), get_tracker(), console)
    stage(story)
    text = console.export_text()
    assert "↺ cached train" in text and "↺ cached evaluate" in text
    first, second = story.facts["pipeline_runs"]
    assert get_tracker().get_run(second).tags["conveyor.cached_steps"] == "4/4"
    assert story.facts["pipeline_metrics"]["f1"] > 0.9
