"""`conveyor score`: the ML Test Score from evidence, on an empty project, on a project with
gated, promoted and rolled-back models, with manual records, and on bad input."""

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
metrics = ["accuracy >= 0.55"]
data = "holdout.csv"
[gates.default.slices]
columns = ["region"]
thresholds = ["accuracy >= 0.5"]
[gates.default.baseline]
kind = "dummy"
[gates.default.compare]
margin = 0.1
"""


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def _score() -> dict[str, Any]:
    result = _invoke("score", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _by_id(score: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["id"]: t for t in score["tests"]}


def test_band_follows_table_v_of_the_2017_paper() -> None:
    from conveyor.ci._rubric import band

    assert band(0).startswith("More of a research project")
    assert band(0.5).startswith("Not totally untested") and band(1).startswith("Not totally untested")
    assert band(1.5).startswith("There's been first pass") and band(2).startswith("There's been first pass")
    assert band(3).startswith("Reasonably tested")
    assert band(5).startswith("Strong levels") and band(5.5).startswith("Exceptional")


def test_an_empty_project_scores_zero_and_lists_how_to_earn_every_test(project: Path) -> None:
    assert _invoke("init").exit_code == 0
    score = _score()
    assert score["final"] == 0 and set(score["sections"].values()) == {0}
    assert len(score["tests"]) == 28
    assert {t["section"] for t in score["tests"]} == {"Data", "Model", "Infra", "Monitor"}
    for test in score["tests"]:
        assert test["status"] == "missing" and test["points"] == 0
        assert test["earn"], test["id"]  # every missing test says what earns it
    assert score["google_level"] == 0 and score["microsoft_level"] == 0
    table = _invoke("score")
    assert table.exit_code == 0 and "final score 0" in table.output and "Infra 7" in table.output


def test_a_folder_without_a_project_names_conveyor_init(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       project: Path) -> None:
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    monkeypatch.chdir(empty)
    result = _invoke("score")
    assert result.exit_code != 0
    assert "conveyor init" in result.output
    assert "Traceback" not in result.output


def _train(kind: str, frame: Any) -> str:
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB

    import conveyor
    import conveyor.models

    X, y = frame.drop(columns=["label"]), frame["label"]
    model = (LogisticRegression(max_iter=500) if kind == "logreg" else GaussianNB()).fit(X, y)
    with conveyor.start_run(experiment="score", name=kind) as run:
        conveyor.models.log(model, "model", input_example=X.head(3))
    return f"runs:/{run.id}/model"


@pytest.fixture
def gated_project(project: Path) -> Path:
    import numpy as np
    import pandas as pd
    from sklearn.datasets import make_classification

    from conveyor.tracking import set_tracker

    (project / "conveyor.toml").write_text(TOML, encoding="utf-8")
    X, y = make_classification(n_samples=500, n_features=5, n_informative=3, class_sep=1.5, random_state=3)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(5)])
    frame["region"] = np.random.default_rng(3).integers(0, 3, len(frame))
    frame["label"] = y
    frame.iloc[300:].to_csv(project / "holdout.csv", index=False)
    first, second = _train("logreg", frame.iloc[:300]), _train("naive-bayes", frame.iloc[:300])
    set_tracker(None)
    for candidate in (first, second):
        checked = _invoke("ci", "check", "--candidate", candidate)
        assert checked.exit_code == 0, checked.output
        assert _invoke("ci", "promote").exit_code == 0
    return project


def test_gates_promotions_and_a_rollback_are_evidence(gated_project: Path) -> None:
    before = _by_id(_score())
    for test in ("Model 5", "Model 6", "Infra 4"):
        assert before[test]["status"] == "automated", before[test]
    assert "2 gate evaluation(s) ran the baseline comparison" in before["Model 5"]["evidence"]
    assert "all 2 promotion(s) went through a passed gate evaluation" in before["Infra 4"]["evidence"]
    assert before["Infra 7"]["status"] == "missing" and "rollback" in before["Infra 7"]["earn"]

    assert _invoke("models", "rollback", "clf", "--reason", "drill").exit_code == 0
    assert _invoke("ci", "init", "--provider", "github").exit_code == 0
    after = _score()
    tests = _by_id(after)
    assert tests["Infra 7"]["status"] == "automated" and "models:/clf@champion → v1" in tests["Infra 7"]["evidence"][0]
    assert tests["Infra 3"]["status"] == "automated"  # the workflow gates the whole pipeline
    assert after["microsoft_level"] >= 1
    assert after["sections"]["Infra"] > _section(before, "Infra")
    assert after["final"] == min(after["sections"].values())


def _section(tests: dict[str, dict[str, Any]], section: str) -> float:
    return sum(t["points"] for t in tests.values() if t["section"] == section)


def test_manual_records_count_half_and_deleted_evidence_is_not_counted(project: Path) -> None:
    import conveyor

    assert _invoke("init").exit_code == 0
    recorded = _invoke("score", "record", "data 2", "--evidence", "leave-one-feature-out study, wiki/LOFO-2026")
    assert recorded.exit_code == 0 and "Data 2" in recorded.output
    with conveyor.start_run(experiment="studies", name="staleness curve") as run:
        conveyor.log_metric("auc_drop_per_month", 0.004)
    from conveyor.tracking import set_tracker

    set_tracker(None)
    assert _invoke("score", "record", "Model 4", "--evidence", "age vs AUC curve",
                   "--ref", f"runs:/{run.id}").exit_code == 0
    tests = _by_id(_score())
    assert tests["Data 2"]["status"] == "manual" and tests["Data 2"]["points"] == 0.5
    assert "leave-one-feature-out study, wiki/LOFO-2026" in tests["Data 2"]["evidence"][-1]
    assert tests["Model 4"]["points"] == 0.5

    assert _invoke("runs", "delete", run.id).exit_code == 0
    score = _score()
    assert _by_id(score)["Model 4"]["points"] == 0
    assert any("Model 4" in note and "deleted" in note for note in score["ignored"])
    shown = _invoke("score")
    assert "not counted" in shown.output


def test_record_refuses_an_unknown_test_and_empty_evidence(project: Path) -> None:
    assert _invoke("init").exit_code == 0
    unknown = _invoke("score", "record", "Data 9", "--evidence", "x")
    assert unknown.exit_code == 3 and "Data 1" in unknown.output and "Monitor 7" in unknown.output
    empty = _invoke("score", "record", "Data 2", "--evidence", "  ")
    assert empty.exit_code == 2 and "evidence" in empty.output
    bad_ref = _invoke("score", "record", "Data 2", "--evidence", "x", "--ref", "/etc/passwd")
    assert bad_ref.exit_code == 2 and "runs:/" in bad_ref.output


def test_html_report_escapes_every_text(project: Path) -> None:
    assert _invoke("init").exit_code == 0
    payload = "<script>alert(1)</script>"
    assert _invoke("score", "record", "Data 3", "--evidence", payload).exit_code == 0
    out = project / "score.html"
    assert _invoke("score", "--html", str(out)).exit_code == 0
    page = out.read_text(encoding="utf-8")
    assert payload not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in page and "ML Test Score" in page and "Data 3" in page
