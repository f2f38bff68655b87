"""`conveyor ci check --pipeline module:pipeline` runs the pipeline and gates the candidate it
declares (``@pipeline(candidate=...)``), with any parameters; a pipeline run's candidate
(e.g. a sweep's best point) is gated with ``--candidate runs:/<pipeline run>``."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conveyor.cli import app

PIPELINE = '''
import conveyor
import conveyor.pipelines


@conveyor.pipelines.step
def load() -> dict:
    from sklearn.datasets import make_classification
    X, y = make_classification(n_samples=300, n_features=4, class_sep=2.0, random_state=0)
    return {"X": X.tolist(), "y": y.tolist()}


@conveyor.pipelines.step
def train(data: dict, C: float = 1.0):
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    conveyor.log_param("penalty", "l2")
    return LogisticRegression(C=C).fit(pd.DataFrame(data["X"], columns=list("abcd")), data["y"])


@conveyor.pipelines.step
def broken(data: dict):
    raise RuntimeError("training data is corrupt")


@conveyor.pipelines.pipeline(candidate="train")
def pipeline(C: float = 1.0):
    train(load(), C=C)


@conveyor.pipelines.pipeline
def undeclared():
    train(load())


@conveyor.pipelines.pipeline(candidate="broken")
def failing():
    broken(load())
'''


@pytest.fixture
def ci_project(project: Path) -> str:
    import pandas as pd
    from sklearn.datasets import make_classification

    module = f"train_{uuid.uuid4().hex[:8]}"
    (project / f"{module}.py").write_text(PIPELINE, encoding="utf-8")
    X, y = make_classification(n_samples=300, n_features=4, class_sep=2.0, random_state=0)
    pd.DataFrame(X, columns=list("abcd")).assign(label=y).iloc[200:].to_csv(project / "holdout.csv", index=False)
    (project / "conveyor.toml").write_text(
        '[tracking]\nflush_interval = 0.05\n[gates.default]\nmodel = "pipe"\ndata = "holdout.csv"\n'
        'metrics = ["accuracy >= 0.8"]\n', encoding="utf-8",
    )
    assert CliRunner().invoke(app, ["init"]).exit_code == 0
    return module


def test_ci_check_runs_the_pipeline_and_gates_its_candidate(ci_project: str) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["ci", "check", "--pipeline", f"{ci_project}:pipeline"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "PASSED" in result.output and "pipe/1" in result.output


def test_ci_check_gates_the_candidate_trained_with_the_given_parameters(ci_project: str) -> None:
    from conveyor.registry import Registry
    from conveyor.tracking import get_tracker

    runner = CliRunner()
    result = runner.invoke(app, ["ci", "check", "--pipeline", f"{ci_project}:pipeline", "-p", "C=0.01", "--json"])
    assert result.exit_code == 0, result.output
    version = Registry(get_tracker()).get("models:/pipe/1")
    run = get_tracker().get_run(version.run_id)
    assert run.params["C"] == "0.01" and run.params["penalty"] == "l2"  # the step's own run, its logged param
    bad = runner.invoke(app, ["ci", "check", "--pipeline", f"{ci_project}:pipeline", "-p", "C=lots"])
    assert bad.exit_code == 2 and "'C' must be a float" in bad.output


def test_a_pipeline_run_hands_its_candidate_to_ci_check(ci_project: str) -> None:
    runner = CliRunner()
    ran = runner.invoke(app, ["pipeline", "run", f"{ci_project}:pipeline", "-p", "C=0.5", "--json"])
    assert ran.exit_code == 0, ran.output
    summary = json.loads(ran.output)
    run_id = summary["run_id"]
    assert summary["candidate"] == f"runs:/{summary['steps']['train']['run_id']}/model"
    result = runner.invoke(app, ["ci", "check", "--candidate", f"runs:/{run_id}"])
    assert result.exit_code == 0, result.output
    assert "pipe/1" in result.output


def test_undeclared_and_failing_candidates_are_clean_errors(ci_project: str) -> None:
    runner = CliRunner()
    undeclared = runner.invoke(app, ["ci", "check", "--pipeline", f"{ci_project}:undeclared"])
    assert undeclared.exit_code == 2 and "declares no candidate" in undeclared.output
    assert 'candidate="' in undeclared.output and "Traceback" not in undeclared.output
    failing = runner.invoke(app, ["ci", "check", "--pipeline", f"{ci_project}:failing"])
    assert failing.exit_code == 1, failing.output
    assert "step 'broken' failed: RuntimeError: training data is corrupt" in failing.output
    assert "Traceback" not in failing.output
