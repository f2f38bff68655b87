"""`conveyor ci check --pipeline module:pipeline` runs the pipeline and gates the model it returns."""

from __future__ import annotations

import uuid
from pathlib import Path

from typer.testing import CliRunner

from conveyor.cli import app

PIPELINE = '''
import conveyor.pipelines


@conveyor.pipelines.step
def load() -> dict:
    from sklearn.datasets import make_classification
    X, y = make_classification(n_samples=300, n_features=4, class_sep=2.0, random_state=0)
    return {"X": X.tolist(), "y": y.tolist()}


@conveyor.pipelines.step
def train(data: dict):
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    return LogisticRegression().fit(pd.DataFrame(data["X"], columns=list("abcd")), data["y"])


@conveyor.pipelines.pipeline
def pipeline():
    train(load())
'''


def test_ci_check_runs_the_pipeline_and_gates_its_model(project: Path) -> None:
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
    runner = CliRunner()
    assert runner.invoke(app, ["init"]).exit_code == 0
    result = runner.invoke(app, ["ci", "check", "--pipeline", f"{module}:pipeline"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "PASSED" in result.output and "pipe/1" in result.output
