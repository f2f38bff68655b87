"""Prediction drift on scores in a monitor evaluation: the served package scores the
reference rows (once, stored) and the window's rows, and the monitor's drift statistic
compares them. Logistic regression (binary), random forest (multiclass), a boosted
classifier (LightGBM or XGBoost), a regressor (its outputs) and a classifier without
probabilities (no scores)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import conveyor.data


def _cancer() -> tuple[pd.DataFrame, str]:
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    frame = X.iloc[:, :8].copy()
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    frame["label"] = y.to_numpy()
    return frame, "classification"


def _wine() -> tuple[pd.DataFrame, str]:
    from sklearn.datasets import load_wine

    X, y = load_wine(return_X_y=True, as_frame=True)
    frame = X.copy()
    frame["label"] = np.asarray(["barolo", "grignolino", "barbera"])[y]
    return frame, "classification"


def _diabetes() -> tuple[pd.DataFrame, str]:
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    frame = X.copy()
    frame["label"] = y.to_numpy()
    return frame, "regression"


def _booster() -> Any:
    try:
        import lightgbm

        return lightgbm.LGBMClassifier(n_estimators=30, verbose=-1)
    except ImportError:
        import xgboost

        return xgboost.XGBClassifier(n_estimators=30, max_depth=2)


def _kinds() -> list[Any]:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return [
        pytest.param("logreg", lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)), _cancer,
                     ["score:1"], id="logreg-binary"),
        pytest.param("forest", lambda: RandomForestClassifier(n_estimators=30, random_state=0), _wine,
                     ["score:barbera", "score:barolo", "score:grignolino"], id="forest-multiclass"),
        pytest.param("boost", _booster, _cancer, ["score:1"], id="boosted-binary"),
        pytest.param("ridge", lambda: Ridge(), _diabetes, ["score"], id="regressor"),
    ]


def _register(name: str, model: Any, train: pd.DataFrame, stores: Any) -> int:
    import conveyor
    import conveyor.models
    from conveyor.gates import promote
    from conveyor.registry import Registry
    from conveyor.tracking import get_tracker

    X = train.drop(columns=["label"])
    model.fit(X, train["label"])
    with conveyor.start_run(experiment="scores", name=name) as run:
        conveyor.models.log(model, "model", input_example=X.head(3))
    get_tracker().flush()
    registry = Registry(stores)  # trusted types are the server's to decide: register on its stores
    version = registry.register(f"runs:/{run.id}/model", name, trusted=["sklearn.tree._tree.Tree"]).version
    promote(name, version, force=True, registry=registry, reason="test")
    return version


def _window(rows: pd.DataFrame, version: int) -> pd.DataFrame:
    return rows.drop(columns=["label"]).assign(prediction=0.0, version=str(version), request_id="r",
                                               row=np.arange(len(rows)), latency_ms=1.0)


@pytest.mark.parametrize(("name", "make", "data", "columns"), _kinds())
def test_scores_drift_when_the_inputs_move_the_outputs(project: Path, stores: Any, name: str, make: Any,
                                                       data: Any, columns: list[str]) -> None:
    from conveyor.monitoring import MonitorConfig, MonitorHooks, Monitoring
    from conveyor.store import MonitoringRepo
    from conveyor.tracking import get_tracker

    frame, task = data()
    shuffled = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    half = len(shuffled) // 2
    train, held = shuffled.iloc[:half], shuffled.iloc[half:]
    version = _register(name, make(), train, stores)
    reference = conveyor.data.add(train, name=f"ref-{name}", tracker=stores).ref
    loads: list[str] = []

    def load(key: str) -> Any:
        loads.append(key)
        return conveyor.data.load(key, tracker=stores)

    remote = getattr(get_tracker(), "http", None) is not None  # the server loads the reference itself
    monitoring = Monitoring(get_tracker(), hooks=MonitorHooks(load_reference=load))
    rules = ["score_drift == 1"] + ([f'class_score_drift("{columns[0].split(":")[1]}") == 1'] if task == "classification"
                                   else ["score_drift_value < 0.01"])
    config = MonitorConfig(name=name, model=name, reference=reference, target="label", rules=rules, method="ks")

    calm = monitoring.evaluate(config, current=_window(held, version))
    assert calm.score_drift is not None and [c["column"] for c in calm.score_drift["columns"]] == columns
    assert calm.score_drift["kind"] == ("probabilities" if task == "classification" else "prediction")
    assert calm.score_drift["n_reference"] == len(train) and calm.score_drift["n_current"] == len(held)
    assert calm.metrics["score_drift"] == 0.0, calm.score_drift
    assert not [r for r in calm.rules if r.fired]

    # the traffic moves: only one kind of case arrives (one class; the heaviest patients)
    if task == "classification":
        moved = held[held["label"].astype(str) == columns[0].split(":")[1]]
    else:
        moved = held[held["bmi"] > held["bmi"].quantile(0.6)]
    shifted = monitoring.evaluate(config, current=_window(moved, version))
    assert shifted.metrics["score_drift"] == 1.0, shifted.score_drift
    assert shifted.status == "alert" and {r.rule for r in shifted.rules if r.fired} == set(rules)
    assert loads == ([] if remote else [reference, reference])  # features and scores: each made once, then stored
    with stores.store.read() as conn:
        stored = MonitoringRepo().evaluations(conn, monitor=name, limit=1)[0]
    assert stored.metrics["score_drift_report"]["columns"][0]["drifted"] is True
    if len(columns) == 1:
        assert shifted.metrics["score_drift_value"] == shifted.score_drift["columns"][0]["value"] < 0.05


def test_a_classifier_without_probabilities_has_no_scores(project: Path, stores: Any) -> None:
    from sklearn.svm import SVC

    from conveyor.monitoring import MonitorConfig, Monitoring
    from conveyor.tracking import get_tracker

    frame, _ = _wine()
    version = _register("svc", SVC(), frame.iloc[::2], stores)
    reference = conveyor.data.add(frame.iloc[::2], name="ref-svc", tracker=stores).ref
    config = MonitorConfig(name="svc", model="svc", reference=reference, target="label", rules=["score_drift == 1"])
    evaluation = Monitoring(get_tracker()).evaluate(config, current=_window(frame.iloc[1::2], version))
    assert evaluation.status == "ok" and evaluation.score_drift is None
    assert evaluation.metrics["score_drift"] is None
    assert [r.status for r in evaluation.rules] == ["no data"]


def test_rule_grammar_knows_the_score_metrics() -> None:
    from conveyor.errors import InvalidInput
    from conveyor.monitoring import parse_rule

    assert parse_rule('class_score_drift("barolo") == 1').evaluate({"class_score_drift(barolo)": 1.0}).fired
    assert parse_rule("score_drift_value < 0.05").evaluate({"score_drift_value": 0.01}).fired
    with pytest.raises(InvalidInput):
        parse_rule("class_score_drift > 0")  # names a class
