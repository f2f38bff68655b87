"""A champion and a challenger that never disagree: the paired bootstrap has nothing to
resample, so the gate says so (CLI report, JSON, model card) instead of printing a [0, 0]
interval, and applies its rule to the exact difference."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conveyor.ci import render_report
from conveyor.gates import define_gate, evaluate


def _data(seed: int = 0, n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2],
                         "label": (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.5, size=n) > 0).astype(int),
                         "y": x[:, 0] * 2 + rng.normal(size=n)})


def _fit(model: object, frame: pd.DataFrame, target: str) -> object:
    model.fit(frame[["a", "b", "c"]], frame[target])  # type: ignore[attr-defined]
    return model


@pytest.mark.parametrize(("task", "metric"), [("classification", "accuracy"), ("classification", "roc_auc"),
                                              ("regression", "rmse")])
def test_identical_models_report_an_undefined_interval(task: str, metric: str) -> None:
    from sklearn.linear_model import LinearRegression, LogisticRegression

    train, test = _data(0), _data(1)
    target = "label" if task == "classification" else "y"
    test = test.drop(columns=["y" if task == "classification" else "label"])
    make = (lambda: LogisticRegression()) if task == "classification" else (lambda: LinearRegression())
    champion, challenger = _fit(make(), train, target), _fit(make(), train, target)  # the same fit twice
    spec = define_gate(task=task, label=target, compare={"metric": metric, "margin": 0.01, "resamples": 200})
    result = evaluate(spec, challenger, test, champion=champion, save=False)
    check = next(c for c in result.checks if c.name == f"compare: paired bootstrap of {metric}")
    assert check.passed is True  # exactly as good: non-inferior by any margin
    assert "no disagreement on 300 rows" in check.summary and "undefined" in check.summary
    assert "CI [" not in check.summary and "[+0.0000, +0.0000]" not in check.summary
    ev = json.loads(json.dumps(result.to_dict()))["checks"]
    boot = next(c for c in ev if c["name"] == check.name)["evidence"]
    assert boot["ci_low"] is None and boot["ci_high"] is None and boot["interval"] == "degenerate"
    assert boot["disagreements"] == 0 and boot["observed_improvement"] == 0.0 and "undefined" in boot["interval_note"]
    report = render_report(result)  # what `conveyor ci check` prints and the model card's gate table holds
    assert "no disagreement on 300 rows" in report and "[+0.0000, +0.0000]" not in report
    # superiority cannot be shown by an identical model: failed on the exact difference, said the same way
    superior = evaluate(define_gate(task=task, label=target,
                                    compare={"metric": metric, "mode": "superior", "margin": 0.0, "resamples": 200}),
                        challenger, test, champion=champion, save=False)
    sup = next(c for c in superior.checks if c.name == check.name)
    assert sup.passed is False and "no disagreement" in sup.summary


def test_models_that_disagree_keep_their_interval_and_count_the_disagreements() -> None:
    from sklearn.linear_model import LogisticRegression

    train, test = _data(0), _data(1).drop(columns=["y"])
    champion = _fit(LogisticRegression(), train, "label")
    challenger = _fit(LogisticRegression(C=0.001), train[["a", "b", "c", "label"]].iloc[:40], "label")
    spec = define_gate(label="label", compare={"metric": "accuracy", "margin": 0.5, "resamples": 200})
    check = next(c for c in evaluate(spec, challenger, test, champion=champion, save=False).checks
                 if c.name == "compare: paired bootstrap of accuracy")
    assert check.evidence["disagreements"] > 0 and check.evidence["ci_low"] < check.evidence["ci_high"]
    assert "CI [" in check.summary and f"{check.evidence['disagreements']} rows where the models differ" in check.summary
