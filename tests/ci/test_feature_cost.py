"""ML Test Score Data 3, "no feature's cost is too much": the gate's feature-cost check
(`[gates.<name>.features] cost = true`) on a logistic-regression pipeline, a random forest,
a gradient-boosting regressor and a text pipeline, its threshold, its report, the score
that reads it, and the errors of its options."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from conveyor.cli import app

KINDS = ("logreg", "forest")


def _data() -> Any:
    import pandas as pd
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    frame = X.iloc[:, :5].copy()
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    frame["site"] = np.where(np.random.default_rng(1).random(len(frame)) < 0.5, "north", "south")
    frame["label"] = y.to_numpy()
    return pd.DataFrame(frame)


def _fit(kind: str, train: Any) -> Any:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = train.drop(columns=["label", "site"]), train["label"]
    if kind == "logreg":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    return RandomForestClassifier(n_estimators=40, random_state=0).fit(X, y)


def _score() -> dict[str, dict[str, Any]]:
    from conveyor.tracking import set_tracker

    set_tracker(None)
    result = CliRunner().invoke(app, ["score", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return {t["id"]: t for t in json.loads(result.output)["tests"]}


@pytest.mark.parametrize("kind", KINDS)
def test_the_cost_of_each_feature_is_measured_stored_reported_and_scored(project: Path, kind: str) -> None:
    import conveyor
    import conveyor.models
    from conveyor.ci._report import render_report
    from conveyor.gates import define_gate, evaluate
    from conveyor.registry import Registry
    from conveyor.tracking import get_tracker

    frame = _data()
    train, holdout = frame.iloc[:380], frame.iloc[380:]
    with conveyor.start_run(experiment="cost", name=kind) as run:
        conveyor.models.log(_fit(kind, train), "model", input_example=train.drop(columns=["label", "site"]).head(3))
    tracker = get_tracker()
    tracker.flush()
    version = Registry(tracker).register(f"runs:/{run.id}/model", kind).version
    tracker.flush()
    before = _score()["Data 3"]
    assert before["status"] == "missing" and "cost = true" in before["earn"]
    assert before["evidence"] == ["no gate measured what each feature costs"]

    gate = define_gate("cost", model=kind, label="label", metrics=["accuracy >= 0.8"], compare=None,
                       features={"min_importance": 0.0, "repeats": 3, "cost": True, "cost_repeats": 3},
                       slices={"columns": ["site"], "thresholds": ["accuracy >= 0.5"]})
    result = evaluate(gate, f"models:/{kind}/{version}", holdout, registry=Registry(get_tracker()))

    benefit = next(c for c in result.checks if c.kind == "features")
    cost = next(c for c in result.checks if c.kind == "feature_cost")
    inputs = [c for c in frame.columns if c not in ("label", "site")]
    measured = cost.evidence["features"]
    assert sorted(measured) == sorted(inputs)  # the slicing column is not a feature of the package
    assert cost.passed is True and cost.evidence["max_cost_share"] is None  # measured, no budget set
    assert cost.evidence["rows"] == len(holdout) and cost.evidence["repeats"] == 3
    assert cost.evidence["predict_ms_per_1000"] > 0
    for name, entry in measured.items():
        assert entry["bytes_per_row"] == 8.0  # a float64 column in Arrow, no nulls
        assert entry["importance"] == benefit.evidence["importance"][name]
        assert entry["importance_lower"] == benefit.evidence["lower"][name]
        assert np.isfinite(entry["ms_per_1000"]) and entry["spread_ms_per_1000"] >= 0
    report = render_report(result)
    assert "### Feature cost" in report
    assert all(f"| {name} | " in report for name in inputs)

    assert result.id is not None  # stored, with the measurement in its evidence
    after = _score()["Data 3"]
    assert after["status"] == "automated", after
    assert after["evidence"] == ["1 gate evaluation(s) ran the measurement of each feature's cost (predict time it "
                                 "adds, Arrow bytes per row) next to its permutation importance"]
    assert after["earn"] is None


def test_a_text_column_over_the_cost_budget_fails_and_is_named(project: Path) -> None:
    """A free-text column whose tokenising dominates the predict time, and which carries no
    signal: it alone exceeds the budget and is named as cost without shown benefit."""
    import pandas as pd
    from sklearn.compose import make_column_transformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from conveyor.gates import define_gate, evaluate

    rng = np.random.default_rng(0)
    words = np.array(["alpha", "beta", "gamma", "delta", "epsilon"])
    rows = pd.DataFrame({"tenure": rng.normal(size=400), "charges": rng.normal(size=400)})
    rows["notes"] = [" ".join(rng.choice(words, 1500)) if rng.random() < 0.5 else "" for _ in range(400)]
    rows["churned"] = (rows.tenure + rows.charges > 0).astype(int)
    model = make_pipeline(
        make_column_transformer((StandardScaler(), ["tenure", "charges"]), (TfidfVectorizer(), "notes")),
        LogisticRegression(),
    ).fit(rows.iloc[:200].drop(columns="churned"), rows.churned.iloc[:200])
    gate = define_gate("budget", label="churned", compare=None, data_checks=False,
                       features={"repeats": 3, "cost": True, "cost_repeats": 5, "max_cost_share": 0.3})
    result = evaluate(gate, model, rows.iloc[200:], champion=None, save=False)
    cost = next(c for c in result.checks if c.kind == "feature_cost")
    assert cost.passed is False and cost.evidence["over"] == ["notes"], cost.summary
    assert "notes" in cost.evidence["cost_without_benefit"]
    assert "1 of 3 feature(s) above 30% of the predict time: notes" in cost.summary
    assert cost.evidence["features"]["notes"]["bytes_per_row"] > 1000  # the text and its offsets
    assert any(c.kind == "feature_cost" for c in result.failures)


def test_cost_of_a_gradient_boosting_regressor_with_a_categorical_column(project: Path) -> None:
    import pandas as pd
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import HistGradientBoostingRegressor

    from conveyor.gates import define_gate, evaluate

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X = X[["bmi", "s5", "bp"]].assign(sex=pd.Categorical(np.where(X["sex"] > 0, "f", "m")))
    model = HistGradientBoostingRegressor(max_iter=50, categorical_features="from_dtype", random_state=0)
    model.fit(X.iloc[:300], y.iloc[:300])
    gate = define_gate("reg", task="regression", label="target", compare=None, data_checks=False,
                       features={"repeats": 3, "cost": True, "cost_repeats": 3})
    result = evaluate(gate, model, X.iloc[300:].assign(target=y.iloc[300:]), champion=None, save=False)
    cost = next(c for c in result.checks if c.kind == "feature_cost")
    measured = cost.evidence["features"]
    assert sorted(measured) == ["bmi", "bp", "s5", "sex"] and cost.passed is True
    assert measured["sex"]["bytes_per_row"] < 8.0  # dictionary-encoded: small integer codes and two strings
    assert measured["bmi"]["bytes_per_row"] == 8.0
    benefit = next(c for c in result.checks if c.kind == "features")
    assert benefit.evidence["metric"] == "rmse"
    assert measured["bmi"]["importance"] == benefit.evidence["importance"]["bmi"]


@pytest.mark.parametrize(("options", "key", "value"), [
    ({"cost": "sometimes"}, "gates.bad.features.cost", "sometimes"),
    ({"cost": "yes"}, "gates.bad.features.cost", "yes"),  # no lax coercion of words to booleans
    ({"cost": True, "max_cost_share": 1.5}, "gates.bad.features.max_cost_share", 1.5),
    ({"cost": True, "cost_repeats": 1}, "gates.bad.features.cost_repeats", 1),
    ({"costs": True}, "gates.bad.features.costs", True),
])
def test_bad_cost_options_name_the_key_and_value(options: dict[str, Any], key: str, value: Any) -> None:
    from conveyor.errors import ConfigError
    from conveyor.gates import define_gate

    with pytest.raises(ConfigError) as caught:
        define_gate("bad", features=options)
    assert caught.value.field == key and caught.value.value == value
    assert key in caught.value.message


def test_bad_cost_option_in_conveyor_toml_is_named(project: Path) -> None:
    from conveyor.errors import ConfigError
    from conveyor.gates import load_gate
    from conveyor.settings import Settings

    (project / "conveyor.toml").write_text('[gates.g]\nlabel = "y"\n[gates.g.features]\ncost = "maybe"\n',
                                           encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_gate("g", Settings.load())
    assert caught.value.field == "gates.g.features.cost" and caught.value.value == "maybe"
    assert "conveyor.toml" in caught.value.message
