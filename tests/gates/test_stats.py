from __future__ import annotations

import numpy as np
import pytest

from conveyor.gates import _metrics as m
from conveyor.gates import _stats


def _pair(n: int, p_a: float, p_b: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    a = np.where(rng.random(n) < p_a, y, (y + 1) % 3)
    b = np.where(rng.random(n) < p_b, y, (y + 2) % 3)
    return y, a, b


@pytest.mark.parametrize("metric", ["accuracy", "f1", "recall"])
def test_cell_count_bootstrap_matches_row_resampling(metric: str) -> None:
    y, a, b = _pair(3000, 0.8, 0.75)
    encoded, (ca, cb) = m.encode(y, a, b)
    fast = _stats.bootstrap_classification(encoded, ca, cb, metric, resamples=2000, confidence=0.9, seed=1)
    rng = np.random.default_rng(2)
    fn = m.CLASSIFICATION[metric]
    deltas = []
    for _ in range(400):
        idx = rng.integers(0, len(y), len(y))
        deltas.append(fn(m.confusion(encoded.y[idx], ca[idx], 3), encoded.positive)
                      - fn(m.confusion(encoded.y[idx], cb[idx], 3), encoded.positive))
    low, high = np.quantile(deltas, [0.05, 0.95])
    assert fast["ci_low"] == pytest.approx(low, abs=0.006)
    assert fast["ci_high"] == pytest.approx(high, abs=0.006)
    assert fast["n"] == 3000 and fast["resamples"] == 2000


def test_metrics_match_scikit_learn() -> None:
    from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, r2_score

    y, a, _ = _pair(500, 0.7, 0.7)
    encoded, (ca,) = m.encode(y, a)
    got = m.classification_metrics(encoded, ca)
    assert got["accuracy"] == pytest.approx(accuracy_score(y, a))
    assert got["f1"] == pytest.approx(f1_score(y, a, average="macro"))
    yr = np.linspace(0, 1, 50)
    pr = yr + np.sin(yr * 9) / 10
    reg = m.regression_metrics(yr, pr)
    assert reg["mae"] == pytest.approx(mean_absolute_error(yr, pr))
    assert reg["r2"] == pytest.approx(r2_score(yr, pr))


def test_regression_bootstrap_sees_a_clear_improvement() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=2000)
    result = _stats.bootstrap_regression(y, y + rng.normal(scale=0.3, size=2000), y + rng.normal(scale=0.6, size=2000),
                                         "rmse", resamples=300, confidence=0.95, seed=0)
    assert 0 < result["ci_low"] < result["observed_improvement"] < result["ci_high"]


def test_mcnemar_exact_below_25_discordant_pairs_and_chi2_above() -> None:
    y = np.zeros(100, dtype=int)
    cand = y.copy()
    champ = y.copy()
    champ[:10] = 1  # the candidate alone is right on 10 rows
    small = _stats.mcnemar(y, cand, champ)
    assert small["test"] == "McNemar exact" and small["candidate_only_right"] == 10
    assert small["p_value"] == pytest.approx(2 * 0.5**10)
    champ[:40] = 1
    assert _stats.mcnemar(y, cand, champ)["test"].startswith("McNemar chi-squared")


def test_wilcoxon_flags_a_worse_regressor_and_handles_identical_ones() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=300)
    good, bad = y + rng.normal(scale=0.1, size=300), y + rng.normal(scale=0.5, size=300)
    assert _stats.wilcoxon(y, bad, good, squared=True)["p_worse"] < 0.001
    assert _stats.wilcoxon(y, good, good, squared=False)["p_value"] == 1.0
