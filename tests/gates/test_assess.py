from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conveyor.errors import InvalidInput
from conveyor.gates import assess, define_gate


def _regression(n: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(0)
    y = rng.normal(size=n)
    frame = pd.DataFrame({"size": rng.uniform(0, 10, n), "shop": rng.choice(["a", "b"], n)})
    return y, y + rng.normal(scale=0.2, size=n), y + rng.normal(scale=0.6, size=n), frame


def test_regression_gate_uses_bootstrap_and_wilcoxon() -> None:
    y, good, bad, frame = _regression()
    spec = define_gate(task="regression", metrics=["rmse <= 0.5", "rmse <= champion.rmse * 1.05"],
                       slices={"bins": {"size": 4}, "columns": ["shop"], "thresholds": ["mae <= 0.5"]})
    values, checks, slices = assess(spec, y, good, bad, frame=frame)
    assert values["candidate"]["rmse"] < values["champion"]["rmse"]
    assert all(c.passed is not False for c in checks)
    assert {c.name for c in checks if c.kind == "compare"} == {"compare: paired bootstrap of rmse", "compare: Wilcoxon signed-rank"}
    assert len(slices) == 6 and slices[0]["score"] >= slices[-1]["score"]  # worst (largest mae) first

    _, checks, _ = assess(spec, y, bad, good, frame=frame)
    failed = {c.name for c in checks if c.failed}
    assert {"compare: paired bootstrap of rmse", "compare: Wilcoxon signed-rank", "threshold: rmse <= 0.5"} <= failed


def test_superiority_mode_requires_a_significant_gain() -> None:
    y, good, _, _ = _regression()
    spec = define_gate(task="regression", compare={"mode": "superior", "margin": 0.0})
    _, checks, _ = assess(spec, y, good, good)
    assert all(c.passed is False for c in checks if c.kind == "compare")


def test_small_slices_are_reported_but_not_judged() -> None:
    y = np.array([0, 1] * 50)
    frame = pd.DataFrame({"g": ["big"] * 95 + ["tiny"] * 5})
    pred = y.copy()
    pred[-5:] = 1 - pred[-5:]  # the tiny slice is all wrong
    spec = define_gate(compare=None, slices={"columns": ["g"], "thresholds": ["accuracy >= 0.9"], "min_size": 10})
    _, checks, slices = assess(spec, y, pred, frame=frame)
    assert checks[0].passed is True
    tiny = next(s for s in slices if s["value"] == "tiny")
    assert tiny["judged"] is False and tiny["score"] == 0.0 and slices[0] is tiny


def test_slicing_an_absent_column_names_the_key() -> None:
    spec = define_gate(slices={"columns": ["nope"]})
    with pytest.raises(InvalidInput, match="gates.default.slices.columns") as info:
        assess(spec, np.zeros(3), np.zeros(3), frame=pd.DataFrame({"a": [1, 2, 3]}))
    assert info.value.value == "nope"
