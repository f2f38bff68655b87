"""``import conveyor`` API in a project folder: run statuses, nesting, autolog."""

from __future__ import annotations

from pathlib import Path

import pytest

import conveyor
from conveyor.entities import RunStatus
from conveyor.errors import Conflict


def test_run_finishes_fails_and_is_killed(project: Path, mode: str) -> None:
    with conveyor.start_run(experiment="e", name="ok") as ok:
        conveyor.log_param("a", 1)
        conveyor.log_metric("m", 2.0, step=1)
    with pytest.raises(ZeroDivisionError), conveyor.start_run(experiment="e") as failed:
        1 / 0
    with pytest.raises(KeyboardInterrupt), conveyor.start_run(experiment="e") as killed:
        raise KeyboardInterrupt
    assert conveyor.get_run(ok.id).status is RunStatus.FINISHED
    assert conveyor.get_run(ok.id).metrics == {"m": 2.0}
    failure = conveyor.get_run(failed.id)
    assert failure.status is RunStatus.FAILED and "ZeroDivisionError" in (failure.error or "")
    assert conveyor.get_run(killed.id).status is RunStatus.KILLED
    # embedded: the project's own store; remote: none on the client, all on the server
    assert (project / ".conveyor" / "conveyor.db").exists() is (mode == "embedded")


def test_nested_runs_need_to_say_so(project: Path) -> None:
    with conveyor.start_run(experiment="e") as parent:
        with pytest.raises(Conflict, match="nested=True"):
            conveyor.start_run(experiment="e")
        with conveyor.start_run(experiment="e", nested=True) as child:
            assert conveyor.active_run().id == child.id  # type: ignore[union-attr]
        assert conveyor.active_run().id == parent.id  # type: ignore[union-attr]
    assert conveyor.get_run(child.id).parent_id == parent.id
    assert conveyor.active_run() is None


def test_logging_without_a_run_starts_one(project: Path) -> None:
    conveyor.log_metric("m", 1.0)
    run = conveyor.active_run()
    assert run is not None
    conveyor.end_run()
    assert conveyor.get_run(run.id).status is RunStatus.FINISHED


def test_search_runs_module_level(project: Path) -> None:
    conveyor.set_experiment("search")
    for acc in (0.7, 0.9, 0.8):
        with conveyor.start_run():
            conveyor.log_metrics({"acc": acc})
            conveyor.log_params({"model": "rf" if acc > 0.75 else "lr"})
    frame = conveyor.search_runs("search", filter="params.model = 'rf'", order_by=["metrics.acc desc"])
    assert list(frame["metrics.acc"]) == [0.9, 0.8]


def test_autolog_records_sklearn_fit(project: Path) -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_iris(return_X_y=True)
    conveyor.autolog(experiment="auto")
    try:
        make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=300)).fit(X, y)
    finally:
        conveyor.autolog(disable=True)
    runs = conveyor.search_runs("auto", output="runs")
    assert len(runs) == 1  # the pipeline's inner fits are not logged twice
    run = runs[0]
    assert run.status is RunStatus.FINISHED
    assert run.params["logisticregression__C"] == "0.5"
    assert 0.9 < run.metrics["training_score"] <= 1.0
    assert run.tags["estimator_class"] == "sklearn.pipeline.Pipeline"
    from conveyor.models import load

    model = load(f"runs:/{run.id}/model")
    assert model.flavor == "sklearn" and model.signature is not None
    assert model.predict(X[:3]).tolist() == [0, 0, 0]
