"""The UI's tests: a real project made through conveyor's own APIs, served by the real server
app, driven in Chromium (fixtures/browser.py).

``ui_project`` holds several runs of two model kinds (logistic regression and a random
forest on iris; a gradient-boosted regressor on diabetes) with metric histories, params,
tags and artifacts: a PNG figure, a CSV, a JSON document, text and a model package. A run
named with HTML, an artifact named with HTML, a long metric history and a run whose
artifact object was deleted from the artifact store cover the bad cases.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fixtures.browser import XSS, LiveServer, browser, page  # noqa: F401  (fixtures)


@dataclass
class Project:
    root: Path
    tracker: Any
    runs: dict[str, str] = field(default_factory=dict)  # label -> run id
    experiment_ids: dict[str, int] = field(default_factory=dict)


def _open(root: Path) -> Any:
    from conveyor.settings import Settings
    from conveyor.tracking import Tracker

    root.mkdir(parents=True, exist_ok=True)
    (root / "conveyor.toml").write_text("[tracking]\ncapture_git = false\n", encoding="utf-8")
    return Tracker.from_settings(Settings.load(root, env={}), create=True)


def _classifiers(tracker: Any, project: Project) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    import conveyor.models

    X, y = load_iris(return_X_y=True, as_frame=True)
    kinds = [("logreg", LogisticRegression, {"C": 0.1}), ("logreg", LogisticRegression, {"C": 1.0}),
             ("forest", RandomForestClassifier, {"n_estimators": 5}), ("forest", RandomForestClassifier, {"n_estimators": 30})]
    for i, (kind, cls, params) in enumerate(kinds):
        run = tracker.create_run("iris", name=f"{kind}-{i}", tags={"team": "ml", "kind": kind})
        tracker.log_params(run.id, {"model": kind, **params, "max_iter": 300} if kind == "logreg" else {"model": kind, **params})
        model = cls(**({**params, "max_iter": 300} if kind == "logreg" else {**params, "random_state": 0})).fit(X, y)
        for step in range(60):
            tracker.log_metric(run.id, "loss", 1.0 / (step + 1 + i) + 0.01 * math.sin(step), step=step)
            tracker.log_metric(run.id, "val_loss", 1.2 / (step + 1 + i) + 0.02, step=step)
        tracker.log_metric(run.id, "accuracy", float(model.score(X, y)))
        if i == 0:
            fig, ax = plt.subplots(figsize=(4, 3))
            ax.scatter(X.iloc[:, 0], X.iloc[:, 1], c=y, s=8)
            ax.set_title("iris sepals")
            tracker.log_figure(run.id, fig, "plots/sepals.png")
            plt.close(fig)
            tracker.log_text(run.id, "sepal_length,sepal_width,target\n" + "\n".join(
                f"{a},{b},{t}" for a, b, t in zip(X.iloc[:30, 0], X.iloc[:30, 1], y[:30])), "data/sample.csv")
            tracker.log_dict(run.id, {"features": list(X.columns), "classes": 3, "note": XSS}, "config.json")
            tracker.log_text(run.id, "training finished\nno warnings\n", "logs/train.txt")
            pd.DataFrame({"x": range(20), "y": [v * 0.5 for v in range(20)]}).to_parquet(project.root / "head.parquet")
            tracker.log_artifact(run.id, project.root / "head.parquet", "data")
        conveyor.models.log(model, "model", input_example=X.head(3), run_id=run.id, tracker=tracker)
        tracker.end_run(run.id)
        project.runs[f"{kind}-{i}"] = run.id


def _regressor(tracker: Any, project: Project) -> None:
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import GradientBoostingRegressor

    import conveyor.models

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    for depth in (2, 3):
        run = tracker.create_run("diabetes", name=f"gbr-depth{depth}", tags={"kind": "gbr"})
        tracker.log_params(run.id, {"model": "gbr", "max_depth": depth})
        model = GradientBoostingRegressor(max_depth=depth, n_estimators=40, random_state=0).fit(X, y)
        for step, loss in enumerate(model.train_score_):
            tracker.log_metric(run.id, "train_mse", float(loss), step=step)
        tracker.log_metric(run.id, "r2", float(model.score(X, y)))
        conveyor.models.log(model, "model", input_example=X.head(3), run_id=run.id, tracker=tracker)
        tracker.end_run(run.id)
        project.runs[f"gbr-{depth}"] = run.id


def _bad(tracker: Any, project: Project) -> None:
    """HTML everywhere a user names something; a long history; a missing artifact object."""
    run = tracker.create_run("hostile " + XSS, name="run " + XSS, tags={"note": XSS, XSS[:20]: "tagkey"})
    tracker.log_params(run.id, {"html": XSS})
    tracker.log_metric(run.id, "score", 1.0)
    tracker.log_text(run.id, XSS, "notes/a<b>.txt")
    tracker.log_text(run.id, XSS, "page.html")
    tracker.end_run(run.id)
    project.runs["xss"] = run.id

    long = tracker.create_run("long", name="long-history")
    _bulk_history(tracker, long.id, "loss", 200_000)
    tracker.end_run(long.id)
    project.runs["long"] = long.id

    gone = tracker.create_run("long", name="missing-object")
    artifact = tracker.log_text(gone.id, "this object will be deleted\n", "lost.txt")
    tracker.end_run(gone.id)
    from conveyor.blobs import Digest

    assert tracker.blobs.delete(Digest.parse(artifact.digest))
    project.runs["missing"] = gone.id


def _bulk_history(tracker: Any, run_id: str, key: str, points: int) -> None:
    """A long history written through the store in batches (a noisy decaying curve)."""
    from conveyor.store import Point

    rows: list[Point] = [(run_id, key, 1.0 / (1 + s / 1000) + 0.05 * math.sin(s / 7.0), s, 1_700_000_000_000 + s * 10)
            for s in range(points)]
    for start in range(0, points, 50_000):
        tracker._write_points(rows[start : start + 50_000])


@pytest.fixture(scope="session")
def ui_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    root = tmp_path_factory.mktemp("ui") / "project"
    tracker = _open(root)
    project = Project(root, tracker)
    _classifiers(tracker, project)
    _regressor(tracker, project)
    _bad(tracker, project)
    tracker.flush()
    for name in ("iris", "diabetes", "long", "hostile " + XSS):
        project.experiment_ids[name] = tracker.get_experiment(name).id
    yield project
    tracker.close()


@pytest.fixture(scope="session")
def ui_server(ui_project: Project) -> Iterator[LiveServer]:
    from conveyor.server import create_app

    server = LiveServer(create_app(ui_project.tracker))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def big_experiment(ui_project: Project) -> int:
    """An experiment of 100,000 runs in the same project (bulk inserts)."""
    from fixtures.bulk_runs import bulk_experiment

    return bulk_experiment(ui_project.tracker, "sweep-100k", 100_000)
