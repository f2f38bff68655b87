"""`conveyor ci check` loads its candidate before registering it: a candidate that is not a
working model package is refused (exit 2) and leaves no version in the registry."""

from __future__ import annotations

import json
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
metrics = ["accuracy >= 0.5"]
data = "holdout.csv"
"""


@pytest.fixture
def candidates(project: Path, tmp_path: Path) -> dict[str, str]:
    import numpy as np
    import pandas as pd
    import skops.io as sio
    from sklearn.ensemble import ExtraTreesClassifier
    from sklearn.linear_model import LogisticRegression

    import conveyor
    import conveyor.models
    from conveyor.tracking import set_tracker

    (project / "conveyor.toml").write_text(TOML, encoding="utf-8")
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    frame["label"] = (frame["a"] + 0.3 * frame["b"] > 0).astype(int)
    frame.iloc[200:].to_csv(project / "holdout.csv", index=False)
    X, y = frame.drop(columns=["label"]).iloc[:200], frame["label"].iloc[:200]
    good = LogisticRegression().fit(X, y)
    sio.dump(good, tmp_path / "output")
    conveyor.models.save(ExtraTreesClassifier(n_estimators=3, random_state=0).fit(X, y), tmp_path / "broken",
                         input_example=X[:3])
    (tmp_path / "broken" / "model.skops").write_bytes(b"truncated")
    with conveyor.start_run(experiment="ci") as run:
        conveyor.log_artifact(tmp_path / "output", "outputs")
        conveyor.log_artifacts(tmp_path / "broken", "broken")
        conveyor.models.log(good, "model", input_example=X[:3])
    set_tracker(None)
    return {k: f"runs:/{run.id}/{p}" for k, p in
            {"bare": "outputs/output", "broken": "broken", "good": "model"}.items()}


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_a_candidate_that_does_not_load_leaves_no_version(candidates: dict[str, str]) -> None:
    bare = _invoke("ci", "check", "--candidate", candidates["bare"])
    assert bare.exit_code == 2 and "not a conveyor model package" in bare.output
    assert "conveyor.models.log" in bare.output
    broken = _invoke("ci", "check", "--candidate", candidates["broken"])
    assert broken.exit_code == 2 and "does not load" in broken.output
    assert _invoke("models", "versions", "clf", "--all", "--json").exit_code == 3  # nothing registered

    passed = _invoke("ci", "check", "--candidate", candidates["good"])
    assert passed.exit_code == 0, passed.output
    versions = json.loads(_invoke("models", "versions", "clf", "--all", "--json").output)
    assert [(v["version"], v["status"]) for v in versions] == [(1, "READY")]
