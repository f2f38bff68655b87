"""A sweep knows which way is better: given, or inferred from well-known names; never guessed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conveyor.errors import InvalidInput
from conveyor.pipelines import sweep
from conveyor.pipelines._sweep import direction

SWEEP = """
@step(metrics=True)
def score(C: float) -> dict:
    return {"accuracy": 1 - abs(C - 1.0) / 10, "rmse": abs(C - 1.0), "custom": C}

@step
def fit(C: float):
    from sklearn.linear_model import LogisticRegression
    return LogisticRegression(C=C).fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])

@pipeline(candidate="fit", evaluation="score")
def flow(C: float = 1.0):
    fit(C=C)
    score(C=C)
"""


@pytest.mark.parametrize(("metric", "maximize"), [
    ("accuracy", True), ("val_accuracy", True), ("f1", True), ("f1_macro", True), ("r2", True),
    ("roc_auc", True), ("test_auc", True), ("loss", False), ("val_loss", False), ("rmse", False),
    ("mae", False), ("log_loss", False), ("eval/mse", False),
])
def test_well_known_names_are_inferred(metric: str, maximize: bool) -> None:
    assert direction(metric) == (maximize, "inferred")
    assert direction(metric, not maximize) == (not maximize, "given")  # a stated direction wins


def test_an_unknown_name_without_a_direction_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        direction("throughput")
    assert "throughput" in caught.value.message and "--maximize or --minimize" in (caught.value.hint or "")


def test_the_sweep_ranks_in_the_inferred_direction(pipes: Any, local_tracker: Any) -> None:
    module = pipes(SWEEP)
    grid = {"C": [0.1, 1.0, 5.0, 9.0]}
    best_accuracy = sweep(module.flow, grid, metric="accuracy", tracker=local_tracker)
    assert best_accuracy.maximize and best_accuracy.direction_source == "inferred"
    assert best_accuracy.best is not None and best_accuracy.best[0] == {"C": 1.0}
    best_rmse = sweep(module.flow, grid, metric="rmse", tracker=local_tracker)
    assert not best_rmse.maximize and best_rmse.best is not None and best_rmse.best[0] == {"C": 1.0}
    # the best point's candidate is what `ci check --candidate runs:/<run>` gates
    assert best_rmse.best[1].candidate and best_rmse.best[1].candidate.startswith("runs:/")
    with pytest.raises(InvalidInput):
        sweep(module.flow, grid, metric="custom", tracker=local_tracker)


def test_cli_sweep_states_the_direction_shows_progress_and_the_handoff(pipes: Any, project: Path) -> None:
    from conveyor.cli import app

    module = pipes(SWEEP)
    ref = f"{module.__name__}:flow"
    runner = CliRunner()
    out = runner.invoke(app, ["pipeline", "sweep", ref, "--grid", "C=0.1,1,5", "--metric", "accuracy"])
    assert out.exit_code == 0, out.output
    assert "higher is better (inferred from the name)" in out.output
    assert out.output.count("✓ {") == 3  # one progress line per finished point
    assert "gate it: conveyor ci check --candidate runs:/" in out.output
    unknown = runner.invoke(app, ["pipeline", "sweep", ref, "--grid", "C=0.1,1", "--metric", "custom"])
    assert unknown.exit_code == 2 and "--maximize or --minimize" in unknown.output
    given = runner.invoke(app, ["pipeline", "sweep", ref, "--grid", "C=0.1,1", "--metric", "custom", "--minimize",
                                "--json"])
    assert given.exit_code == 0, given.output
    data = json.loads(given.output)
    assert data["maximize"] is False and data["direction"] == "given" and data["best"]["params"] == {"C": 0.1}
    assert data["best"]["candidate"].startswith("runs:/")
