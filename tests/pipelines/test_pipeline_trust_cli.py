"""``conveyor pipeline run`` and ``sweep`` take ``--trust`` like every command that loads
model packages: a step's estimator that references an untrusted callable is refused when
the next step (in its own worker process) loads it, and loads once the name is trusted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

# fit: an estimator naming json.dumps (a callable no default policy trusts); use: loads it
# back in another worker process through the skops materializer, which applies the policy.
UNTRUSTED = """
import json

@step
def fit(C: float) -> object:
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer
    return Pipeline([("f", FunctionTransformer(func=json.dumps))])

@step(metrics=True)
def use(model: object, C: float) -> dict:
    return {"score": C + len(model.steps)}

@pipeline
def flow(C: float = 1.0):
    use(model=fit(C=C), C=C)
"""


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_trust_reaches_the_step_processes(pipes: Any, project: Path, command: str) -> None:
    from conveyor.cli import app

    pytest.importorskip("skops")
    ref = f"{pipes(UNTRUSTED).__name__}:flow"
    args = ["pipeline", "run", ref, "-p", "C=1", "--json"] if command == "run" else \
        ["pipeline", "sweep", ref, "--grid", "C=1,2", "--metric", "score", "--maximize", "--json"]
    runner = CliRunner()
    refused = runner.invoke(app, [*args, "--no-cache"])
    assert refused.exit_code == 1, refused.output
    if command == "run":  # the step's error names the callable and the fix
        steps = json.loads(refused.output)["steps"]
        assert steps["fit"]["status"] == "FINISHED" and steps["use"]["status"] == "FAILED"
        assert "json.dumps" in steps["use"]["error"] and "--trust" in steps["use"]["error"]
    else:
        assert [p["status"] for p in json.loads(refused.output)["points"]] == ["FAILED", "FAILED"]
    trusted = runner.invoke(app, [*args, "--no-cache", "--trust", "json.dumps"])
    assert trusted.exit_code == 0, trusted.output
    out = json.loads(trusted.output)
    if command == "run":
        assert out["status"] == "FINISHED" and out["steps"]["use"]["status"] == "FINISHED"
    else:
        assert [p["status"] for p in out["points"]] == ["FINISHED", "FINISHED"] and out["best"]["score"] == 3.0


def test_pipeline_commands_document_trust() -> None:
    from conveyor.cli import app

    for command in ("run", "sweep"):
        shown = CliRunner().invoke(app, ["pipeline", command, "--help"], env={"COLUMNS": "200"})
        assert "--trust" in shown.output, command
