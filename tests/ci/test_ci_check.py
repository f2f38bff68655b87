"""`conveyor ci check` end to end in a project: it passes a better candidate, fails a
deliberately worse one (exit 1, report says why), and `ci promote` is the CD step."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conveyor.cli import app

TOML = """
[tracking]
flush_interval = 0.05

[gates.default]
model = "clf"
label = "label"
metrics = ["accuracy >= 0.55", "accuracy >= champion.accuracy - 0.02"]
data = "holdout.csv"
[gates.default.slices]
columns = ["region"]
thresholds = ["accuracy >= 0.5"]
[gates.default.baseline]
kind = "dummy"
margin = 0.02

[model_cards.clf]
intended_use = "Demo classifier for the conveyor test-suite."
limitations = "Synthetic data only."
"""


def _train(kind: str, frame: Any) -> str:
    from sklearn.linear_model import LogisticRegression

    import conveyor
    import conveyor.models

    X, y = frame.drop(columns=["label"]), frame["label"]
    if kind == "bad":
        X = X.assign(**{c: 0.0 for c in X.columns if c != "x4"})  # one feature: ~0.81 accuracy vs ~0.99
    model = LogisticRegression(max_iter=500).fit(X, y)
    with conveyor.start_run(experiment="ci", name=kind) as run:
        conveyor.models.log(model, "model", input_example=frame.drop(columns=["label"]).head(3))
    return f"runs:/{run.id}/model"


@pytest.fixture
def ci_project(project: Path) -> Path:
    import numpy as np
    import pandas as pd
    from sklearn.datasets import make_classification

    (project / "conveyor.toml").write_text(TOML, encoding="utf-8")
    X, y = make_classification(n_samples=700, n_features=6, n_informative=4, n_clusters_per_class=1,
                               class_sep=1.5, flip_y=0.02, random_state=1)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(6)])
    frame["region"] = np.random.default_rng(1).integers(0, 3, len(frame))
    frame["label"] = y
    frame.iloc[400:].to_csv(project / "holdout.csv", index=False)
    frame.iloc[:400].to_csv(project / "train.csv", index=False)
    return project


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_ci_check_passes_a_better_candidate_and_fails_a_worse_one(ci_project: Path) -> None:
    import pandas as pd

    from conveyor.tracking import set_tracker

    train = pd.read_csv(ci_project / "train.csv")
    weak, strong, weak_again = _train("bad", train), _train("good", train), _train("bad", train)
    set_tracker(None)  # the CLI opens its own stores; release ours

    first = _invoke("ci", "check", "--candidate", weak, "--report", "first.md")
    assert first.exit_code == 0, first.output
    assert _invoke("ci", "promote").exit_code == 0

    better = _invoke("ci", "check", "--candidate", strong)
    assert better.exit_code == 0, better.output
    assert "PASSED" in better.output and "| accuracy |" in better.output and "▲" in better.output
    promoted = _invoke("ci", "promote")
    assert promoted.exit_code == 0 and "1 → 2" in promoted.output

    worse = _invoke("ci", "check", "--candidate", weak_again, "--report", "worse.md")
    assert worse.exit_code == 1
    report = (ci_project / "worse.md").read_text(encoding="utf-8")
    assert "FAILED" in report and "Why it failed" in report and "paired bootstrap" in report
    assert "n=300" in report  # the decision states its sample size

    refused = _invoke("models", "promote", "clf/3")
    assert refused.exit_code == 1 and "gate failed" in refused.output
    no_reason = _invoke("models", "promote", "clf/3", "--force")
    assert no_reason.exit_code == 2 and "reason" in no_reason.output

    history = json.loads(_invoke("models", "history", "clf", "--alias", "champion", "--json").output)
    assert [e["kind"] for e in history] == ["alias", "alias", "promote_refused"]
    at = json.loads(_invoke("models", "history", "clf", "--at", "2999-01-01", "--json").output)
    assert at["aliases"] == {"champion": 2}

    rolled = _invoke("models", "rollback", "clf", "--reason", "drill")
    assert rolled.exit_code == 0 and "2 → 1" in rolled.output

    card = _invoke("models", "card", "clf/2")
    assert card.exit_code == 0
    for section in ("## Model details", "## Intended use", "Demo classifier", "## Metrics", "## Gate",
                    "## Quantitative analyses", "## Lineage and history", "Synthetic data only"):
        assert section in card.output

    listed = json.loads(_invoke("models", "list", "--json").output)
    assert listed[0]["name"] == "clf" and listed[0]["aliases"] == {"champion": 1}
    assert _invoke("models", "alias", "clf", "champion", "9").exit_code == 3


def test_ci_check_needs_a_candidate_or_pipeline(ci_project: Path) -> None:
    result = _invoke("ci", "check")
    assert result.exit_code == 2


@pytest.mark.parametrize(("provider", "path"), [("github", ".github/workflows/conveyor-gate.yml"), ("gitlab", ".gitlab-ci.yml")])
def test_ci_init_writes_a_workflow(ci_project: Path, provider: str, path: str) -> None:
    import yaml

    assert _invoke("ci", "init", "--provider", provider).exit_code == 0
    text = (ci_project / path).read_text(encoding="utf-8")
    assert "conveyor ci check --pipeline train:pipeline" in text and "conveyor ci promote" in text
    yaml.safe_load(text)
    assert _invoke("ci", "init", "--provider", provider).exit_code == 1  # exists: --force needed
    assert _invoke("ci", "init", "--provider", "jenkins").exit_code == 2
    # the team's stores come from the CI's secrets, every one of them named
    for name in ("CONVEYOR_STORE_METADATA_URL", "CONVEYOR_STORE_ARTIFACTS_URL", "AWS_SECRET_ACCESS_KEY"):
        assert (f"secrets.{name}" if provider == "github" else name) in text
    if provider == "github":
        assert yaml.safe_load(text)["env"]["CONVEYOR_STORE_METADATA_URL"] == "${{ secrets.CONVEYOR_STORE_METADATA_URL }}"


@pytest.mark.parametrize(("files", "install"), [
    ({"pyproject.toml": "[project]\nname = 'p'\n"}, "pip install -e . conveyor-mlops"),
    ({"setup.py": "from setuptools import setup\nsetup()\n"}, "pip install -e . conveyor-mlops"),
    ({"requirements.txt": "scikit-learn\n"}, "pip install -r requirements.txt conveyor-mlops"),
    ({}, "pip install conveyor-mlops"),
])
def test_ci_init_installs_the_project_the_way_it_is_laid_out(tmp_path: Path, files: dict[str, str], install: str) -> None:
    from conveyor.ci._init import write_workflow

    for name, text in files.items():
        (tmp_path / name).write_text(text)
    for provider in ("github", "gitlab"):
        written = write_workflow(tmp_path, provider).read_text()
        assert install in written and ("pip install -e ." in written) == ("-e ." in install)
