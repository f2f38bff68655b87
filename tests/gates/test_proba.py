"""Probability metrics in gates: roc_auc, log_loss, brier and ece, as thresholds, slice
thresholds, the paired bootstrap comparison with the champion and the baseline; on
logistic regression (binary, string labels), random forest (multiclass), XGBoost and
LightGBM; clear errors for a model without probabilities and for a regression gate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from conveyor.errors import InvalidInput
from conveyor.gates import define_gate, evaluate
from conveyor.gates import _proba as P


def _binary(seed: int = 0, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p1 = np.clip(0.5 + (y - 0.5) * rng.uniform(0, 0.8, n) + rng.normal(0, 0.15, n), 0.01, 0.99)
    p1[:40] = np.round(p1[:40], 1)  # ties
    return y, np.column_stack([1 - p1, p1])


def _multi(seed: int = 1, n: int = 300, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k)) + 1.5 * np.eye(k)[y]
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, p


def test_metrics_agree_with_scikit_learn_binary_and_multiclass() -> None:
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    y, p = _binary()
    got = P.probability_metrics(y, p, positive=1)
    assert got["roc_auc"] == pytest.approx(roc_auc_score(y, p[:, 1]))
    assert got["log_loss"] == pytest.approx(log_loss(y, p))
    assert got["brier"] == pytest.approx(brier_score_loss(y, p[:, 1]))
    y, p = _multi()
    got = P.probability_metrics(y, p, positive=3)
    assert got["roc_auc"] == pytest.approx(roc_auc_score(y, p, multi_class="ovr", average="macro"))
    assert got["log_loss"] == pytest.approx(log_loss(y, p))
    assert got["brier"] == pytest.approx(np.mean(((p - np.eye(4)[y]) ** 2).sum(axis=1)))


def test_ece_by_hand() -> None:
    # confidences 0.95 (bin 9), 0.95, 0.65 (bin 6), 0.55 (bin 5); right, wrong, right, right
    p = np.array([[0.95, 0.05], [0.05, 0.95], [0.35, 0.65], [0.55, 0.45]])
    y = np.array([0, 0, 1, 0])
    want = (abs((1 - 0.95) + (0 - 0.95)) + abs(1 - 0.65) + abs(1 - 0.55)) / 4
    assert P.probability_metrics(y, p, 1)["ece"] == pytest.approx(want)


@pytest.mark.parametrize("metric", ["roc_auc", "log_loss", "brier", "ece"])
def test_weighted_rows_equal_repeated_rows(metric: str) -> None:
    """The bootstrap weights a row by how often it was drawn: the same as repeating it."""
    for y, p, positive in (_binary(2, 120) + (1,), _multi(3, 120) + (0,)):
        w = np.random.default_rng(0).integers(0, 4, (3, len(y))).astype(float)
        batched = P.METRICS[metric](y, p, positive, w)
        for row, weights in enumerate(w):
            idx = np.repeat(np.arange(len(y)), weights.astype(int))
            assert batched[row] == pytest.approx(P.METRICS[metric](y[idx], p[idx], positive)[0])


def test_columns_follow_the_class_labels_not_their_position() -> None:
    proba = np.array([[0.9, 0.1], [0.2, 0.8]])  # model columns: ["yes", "no"]
    out = P.aligned(proba, ["yes", "no"], ("maybe", "no", "yes"), who="candidate")
    assert out.tolist() == [[0.0, 0.1, 0.9], [0.0, 0.8, 0.2]]
    with pytest.raises(InvalidInput, match="names no classes"):
        P.aligned(proba, None, ("a", "b", "c"), who="candidate")


def _cancer() -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    frame = data.data.iloc[:, :8].copy()
    frame["label"] = np.where(data.target == 1, "benign", "malignant")
    frame["size"] = np.where(frame["mean radius"] > frame["mean radius"].median(), "large", "small")
    return frame.iloc[::2].reset_index(drop=True), frame.iloc[1::2].reset_index(drop=True)


def _wine() -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.datasets import load_wine

    data = load_wine(as_frame=True)
    frame = data.data.copy()
    frame["label"] = data.target
    return frame.iloc[::2].reset_index(drop=True), frame.iloc[1::2].reset_index(drop=True)


def _fit(model: Any, train: pd.DataFrame, drop: tuple[str, ...] = ("label",)) -> Any:
    return model.fit(train.drop(columns=list(drop)), train["label"])


def test_logistic_regression_binary_string_labels_thresholds_slices_and_baseline(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import conveyor.models

    train, test = _cancer()
    model = _fit(make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)), train, ("label", "size"))
    conveyor.models.save(model, tmp_path / "m", input_example=train.drop(columns=["label", "size"]).head(5))
    loaded = conveyor.models.load(tmp_path / "m")  # classes read from the package's signature
    spec = define_gate(metrics=["roc_auc >= 0.95", "log_loss <= 0.3", "brier <= 0.08", "ece <= 0.1"],
                       positive_label="malignant", compare=None,
                       slices={"columns": ["size"], "thresholds": ["roc_auc >= 0.8"], "min_size": 20},
                       baseline={"kind": "dummy", "metric": "log_loss", "margin": 0.2})
    result = evaluate(spec, loaded, test, save=False)
    assert result.passed, [c.summary for c in result.failures]
    features = test.drop(columns=["label", "size"])
    want = roc_auc_score(test["label"] == "malignant", model.predict_proba(features)[:, 1])  # classes_: benign, malignant
    assert result.metrics["roc_auc"] == pytest.approx(want)
    assert result.baseline_metrics["roc_auc"] == pytest.approx(0.5)  # the prior ranks nothing
    assert {s["column"] for s in result.slices} == {"size"} and all("roc_auc" in c.summary or c.kind != "slices"
                                                                   for c in result.checks)
    strict = define_gate(metrics=["roc_auc >= 0.9999"], positive_label="malignant", compare=None)
    failed = evaluate(strict, loaded, test, save=False)
    assert not failed.passed and "roc_auc = " in failed.failures[0].summary


def _boosters() -> list[Any]:
    cases = []
    try:
        import xgboost

        cases.append(pytest.param(lambda: xgboost.XGBClassifier(n_estimators=30, max_depth=2), id="xgboost"))
    except ImportError:
        pass
    try:
        import lightgbm

        cases.append(pytest.param(lambda: lightgbm.LGBMClassifier(n_estimators=30, verbose=-1), id="lightgbm"))
    except ImportError:
        pass
    return cases


@pytest.mark.parametrize("make", _boosters())
def test_multiclass_champion_comparison_on_auc_with_bootstrap_ci(tmp_path: Path, make: Any) -> None:
    """A random forest champion vs a boosted challenger (3 classes): one-vs-rest macro AUC,
    compared with a paired bootstrap CI; a crippled challenger is vetoed on log-loss."""
    from sklearn.ensemble import RandomForestClassifier

    import conveyor.models

    train, test = _wine()
    forest = _fit(RandomForestClassifier(n_estimators=30, random_state=0), train)
    booster = _fit(make(), train)
    conveyor.models.save(booster, tmp_path / "b", input_example=train.drop(columns=["label"]).head(5))
    loaded = conveyor.models.load(tmp_path / "b")
    spec = define_gate(metrics=["roc_auc >= 0.9", "roc_auc >= champion.roc_auc - 0.05"],
                       compare={"metric": "roc_auc", "margin": 0.05, "resamples": 500})
    result = evaluate(spec, loaded, test, champion=forest, save=False)
    assert result.passed, [c.summary for c in result.failures]
    boot = next(c for c in result.checks if c.name == "compare: paired bootstrap of roc_auc")
    assert boot.evidence["ci_low"] <= boot.evidence["observed_improvement"] <= boot.evidence["ci_high"]
    assert result.champion_metrics["roc_auc"] > 0.9 and "log_loss" in result.champion_metrics
    weak = _fit(RandomForestClassifier(n_estimators=3, max_depth=1, random_state=0),
                train.assign(**{c: 0.0 for c in train.columns if c not in ("label", "hue")}))
    vetoed = evaluate(define_gate(compare={"metric": "log_loss", "margin": 0.01, "resamples": 300}),
                      weak, test, champion=loaded, save=False)
    check = next(c for c in vetoed.checks if c.kind == "compare")
    assert check.passed is False and check.evidence["ci_high"] < 0  # clearly worse log-loss


def test_models_without_probabilities_and_regression_gates_say_so() -> None:
    from sklearn.svm import SVC

    train, test = _wine()
    svc = _fit(SVC(), train)  # probability=False: no predict_proba
    with pytest.raises(InvalidInput, match=r"needs class probabilities for roc_auc, but the candidate has none"):
        evaluate(define_gate(metrics=["roc_auc >= 0.8"], compare=None), svc, test, save=False)
    from sklearn.ensemble import RandomForestClassifier

    forest = _fit(RandomForestClassifier(n_estimators=10, random_state=0), train)
    with pytest.raises(InvalidInput, match="the champion has none"):
        evaluate(define_gate(compare={"metric": "brier"}), forest, test, champion=svc, save=False)
    # label metrics still work for it, and a classifier with probabilities reports them too
    assert "roc_auc" not in evaluate(define_gate(compare=None), svc, test, save=False).metrics
    with pytest.raises(InvalidInput, match=r"names unknown metric 'log_loss' \(known metrics: mae, mse, r2, rmse\)"):
        define_gate(task="regression", metrics=["log_loss <= 1"])
    with pytest.raises(InvalidInput, match="unknown metric"):
        define_gate(metrics=["auc >= 0.8"])
