"""One contract from pipeline to candidate (issue 10, builds 3 and 5).

Inside a step the tracking API logs to the step's own run; a pipeline declares its
candidate and evaluation steps; the candidate's run carries the provenance (git commit,
data set versions, pipeline run and parameters, evaluation metrics) that the registry, the
model card and the offline metrics read — the same after a cache hit.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from conveyor.errors import InvalidInput
from conveyor.pipelines import PipelineFailed, run, train_candidate

pytestmark = pytest.mark.slow  # each test runs real step processes

WINE = """
import conveyor
import conveyor.models
from conveyor.pipelines import dataset

FEATURES = ["alcohol", "malic_acid", "ash", "color_intensity", "proline"]

@step(outputs=("train", "test"))
def split(frame, seed: int = 0):
    from sklearn.model_selection import train_test_split
    return tuple(train_test_split(frame, test_size=0.3, random_state=seed, stratify=frame["target"]))

@step
def fit_logged(frame, C: float = 1.0) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    X, y = frame[FEATURES], frame["target"]
    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=500)).fit(X, y)
    conveyor.log_param("solver", "lbfgs")
    conveyor.set_tag("family", "linear")
    for i, loss in enumerate([0.9, 0.5, 0.3]):
        conveyor.log_metric("loss", loss, step=i)
    conveyor.log_dict({"features": FEATURES}, "features.json")
    assert conveyor.active_run().id == conveyor.active_run().id  # the step's run is active
    conveyor.models.log(model, "model", input_example=X.head(3))
    return {"rows": len(frame)}

@step
def fit_returned(frame, depth: int = 2):
    from sklearn.ensemble import GradientBoostingRegressor
    return GradientBoostingRegressor(max_depth=depth, n_estimators=20, random_state=0).fit(
        frame[FEATURES], frame["target"].astype(float))

@step(metrics=True)
def evaluate_logged(frame, rows: dict) -> dict:
    conveyor.log_metric("evaluated_rows", float(len(frame)))
    return {"accuracy": 0.9, "f1_macro": 0.88}

@step(metrics=True)
def evaluate_returned(model, frame) -> dict:
    import numpy as np
    error = model.predict(frame[FEATURES]) - frame["target"].astype(float)
    return {"rmse": float(np.sqrt(np.mean(error ** 2))), "mae": float(np.mean(np.abs(error)))}

@step
def explode(frame):
    raise ValueError("the feature table is empty")

@step
def not_a_model(frame) -> dict:
    return {"rows": len(frame)}

@step
def opens_a_run(frame) -> dict:
    with conveyor.start_run(nested=True):
        pass
    return {}

@pipeline(candidate="fit_logged", evaluation="evaluate_logged")
def logged(C: float = 1.0):
    train, test = split(dataset("wine"))
    evaluate_logged(test, fit_logged(train, C=C))

@pipeline(candidate="fit_returned", evaluation="evaluate_returned")
def returned(depth: int = 2):
    train, test = split(dataset("wine"))
    evaluate_returned(fit_returned(train, depth=depth), test)

@pipeline
def undeclared():
    fit_returned(dataset("wine"))

@pipeline(candidate="explode")
def raising():
    explode(dataset("wine"))

@pipeline(candidate="not_a_model")
def no_model():
    not_a_model(dataset("wine"))

@pipeline(candidate="opens_a_run")
def nested():
    opens_a_run(dataset("wine"))

@pipeline(candidate="nope")
def misnamed():
    not_a_model(dataset("wine"))
"""


@pytest.fixture
def wine(project: Path, pipes: Any, local_tracker: Any) -> Any:
    """The wine table as data set ``wine`` in a git repository, and the pipelines module."""
    import conveyor.data
    from sklearn.datasets import load_wine

    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=project, check=True)
    subprocess.run([*git, "add", "-A"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-qm", "project"], cwd=project, check=True)
    conveyor.data.add(load_wine(as_frame=True).frame, name="wine", tracker=local_tracker)
    return pipes(WINE)


def _commit(project: Path) -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_the_tracking_api_inside_a_step_logs_to_the_step_run(wine: Any, local_tracker: Any) -> None:
    result = run(wine.logged, tracker=local_tracker)
    assert result.ok, {n: s.error for n, s in result.steps.items()}
    step = local_tracker.get_run(result.steps["fit_logged"].run_id)
    assert step.params["solver"] == "lbfgs" and step.params["C"] == "1.0"
    assert step.tags["family"] == "linear"
    assert [m.value for m in local_tracker.metric_history(step.id, "loss")] == [0.9, 0.5, 0.3]
    paths = {a.path for a in local_tracker.list_artifacts(step.id)}
    assert {"features.json", "model", "outputs/output", "logs/step.log"} <= paths
    assert result.candidate == f"runs:/{step.id}/model"
    import conveyor.models

    loaded = conveyor.models.load(result.candidate, tracker=local_tracker)
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame
    assert len(loaded.predict(frame[["alcohol", "malic_acid", "ash", "color_intensity", "proline"]].head(4))) == 4
    # the evaluation step's logged and returned metrics are the pipeline's evaluation
    assert result.evaluation == {"accuracy": 0.9, "f1_macro": 0.88, "evaluated_rows": 54.0}


def test_a_returned_model_is_packaged_as_the_candidate(wine: Any, local_tracker: Any) -> None:
    result = train_candidate(wine.returned, params={"depth": 3}, tracker=local_tracker)
    step_run = result.steps["fit_returned"].run_id
    assert result.candidate == f"runs:/{step_run}/model"
    assert set(result.evaluation) == {"rmse", "mae"} and result.evaluation["rmse"] > 0
    from conveyor.models import read_meta  # the package's metadata names the flavor

    folder = local_tracker.download_artifact(step_run, "model", Path.cwd() / "pkg")
    assert read_meta(folder).flavor == "sklearn"


def test_provenance_of_a_pipeline_trained_model_survives_a_cache_hit(
    wine: Any, local_tracker: Any, project: Path
) -> None:
    from conveyor.registry import Registry, model_card

    registry = Registry(local_tracker)
    first = train_candidate(wine.logged, params={"C": 0.5}, tracker=local_tracker)
    second = train_candidate(wine.logged, params={"C": 0.5}, tracker=local_tracker)
    assert set(second.cached) >= {"split", "fit_logged", "evaluate_logged"}
    for result in (first, second):
        version = registry.register(result.candidate, "wine-clf")
        assert version.git_commit == _commit(project)
        assert version.data_versions == ("data:/wine@1",)
        run_ = local_tracker.get_run(version.run_id)
        assert run_.tags["conveyor.pipeline_run"] == result.run_id
        # what `monitor performance` shows as the offline column: the evaluation, no cache tags
        offline = dict(run_.metrics)
        assert offline["accuracy"] == 0.9 and "cache_hit" not in offline
        from conveyor.data import lineage_graph

        graph = lineage_graph(local_tracker, version.uri, direction="up", depth=10)
        assert "data:/wine@1" in {str(e.upstream) for e in graph.upstream}  # lineage agrees with the version
        card = model_card(version.uri, registry=registry)
        assert f"`{_commit(project)}`" in card and "`data:/wine@1`" in card
        assert f"`{result.run_id}`" in card and "C=0.5" in card
        assert "accuracy=0.9" in card and "cache_hit" not in card
        assert "not recorded" not in card.split("## Intended use")[0]


def test_a_pipeline_without_a_candidate_is_a_clear_error(wine: Any, local_tracker: Any) -> None:
    with pytest.raises(InvalidInput) as caught:
        train_candidate(wine.undeclared, tracker=local_tracker)
    assert "declares no candidate" in caught.value.message and "candidate=" in (caught.value.hint or "")
    with pytest.raises(InvalidInput, match="not one of its steps"):
        wine.misnamed()


@pytest.mark.parametrize(("pipeline", "expected"), [
    ("raising", "step 'explode' failed: ValueError: the feature table is empty"),
    ("no_model", "cannot package as a model"),
    ("nested", "not available"),
])
def test_a_candidate_step_that_fails_is_a_clean_failure(
    wine: Any, local_tracker: Any, pipeline: str, expected: str
) -> None:
    with pytest.raises(PipelineFailed) as caught:
        train_candidate(getattr(wine, pipeline), tracker=local_tracker)
    assert expected in caught.value.message
    assert "conveyor runs show" in (caught.value.hint or "")


def test_a_cache_hit_of_the_candidate_takes_the_new_evaluation_only(pipes: Any, local_tracker: Any) -> None:
    source = """
    SCALE = {scale}

    @step
    def fit(n: int = 20):
        from sklearn.linear_model import LogisticRegression
        return LogisticRegression().fit([[float(i)] for i in range(n)], [i % 2 for i in range(n)])

    @step(metrics=True)
    def score(model) -> dict:
        return {{"score": float(SCALE)}}

    @pipeline(candidate="fit", evaluation="score")
    def flow():
        score(fit())
    """
    name = f"evalchange_{Path.cwd().name[-6:].replace('-', '_')}"
    first = train_candidate(pipes(source.format(scale=1), name=name).flow, tracker=local_tracker)
    second = train_candidate(pipes(source.format(scale=22), name=name).flow, tracker=local_tracker)
    assert second.cached == ["fit"] and second.evaluation == {"score": 22.0}
    candidate_run = second.steps["fit"].run_id
    assert [m.value for m in local_tracker.metric_history(candidate_run, "score")] == [22.0]
    assert local_tracker.get_run(first.steps["fit"].run_id).metrics["score"] == 1.0
