from __future__ import annotations

from typing import Any

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


def _discordant(b: int, c: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and two prediction vectors with exactly b rows only the candidate gets right and
    c only the champion, the rest right for both (row order shuffled)."""
    y = np.zeros(n, dtype=int)
    cand = np.zeros(n, dtype=int)
    champ = np.zeros(n, dtype=int)
    champ[:b] = 1
    cand[b:b + c] = 1
    order = np.random.default_rng(b * 7 + c).permutation(n)
    return y[order], cand[order], champ[order]


def _binomial_tail(k: int, n: int) -> float:
    """P(X ≥ k), X ~ Binomial(n, 1/2), from exact integer sums (no SciPy)."""
    from fractions import Fraction
    from math import comb

    return float(Fraction(sum(comb(n, i) for i in range(k, n + 1)), 2**n))


@pytest.mark.parametrize(("b", "c"), [(10, 20), (20, 10), (3, 9), (120, 160), (0, 7)])
def test_mcnemar_p_values_are_the_exact_binomial_ones(b: int, c: int) -> None:
    # b=10, c=20: the old continuity-corrected normal gave p_better 0.950; exactly it is 0.979
    got = _stats.mcnemar(*_discordant(b, c, 500))
    assert (got["candidate_only_right"], got["champion_only_right"]) == (b, c)
    assert got["p_better"] == pytest.approx(_binomial_tail(b, b + c), rel=1e-9)
    assert got["p_worse"] == pytest.approx(_binomial_tail(c, b + c), rel=1e-9)
    assert got["p_value"] == pytest.approx(min(1.0, 2 * _binomial_tail(max(b, c), b + c)), rel=1e-9)
    if (b, c) == (10, 20):
        assert got["p_better"] == pytest.approx(0.9786, abs=1e-4)


def _restricted_score_z(b: int, c: int, n: int, delta0: float) -> float:
    """Tango's statistic from first principles: maximise the multinomial likelihood of the
    cells (only-candidate-right, only-champion-right, concordant) numerically under
    p_b − p_c = delta0, then standardise b − c − n·delta0 by its variance there."""
    from scipy.optimize import minimize_scalar

    low, high = max(0.0, -delta0), (1 - delta0) / 2

    def nll(q: float) -> float:
        pb, rest = q + delta0, 1 - 2 * q - delta0
        return -(b * np.log(max(pb, 1e-300)) + c * np.log(max(q, 1e-300)) + (n - b - c) * np.log(max(rest, 1e-300)))

    q = minimize_scalar(nll, bounds=(low + 1e-12, high - 1e-12), method="bounded", options={"xatol": 1e-13}).x
    variance = n * ((q + delta0 + q) - delta0**2)
    return float((b - c - n * delta0) / np.sqrt(variance))


@pytest.mark.parametrize(("b", "c", "n", "delta0"), [
    (500, 1000, 100_000, -0.01), (12, 19, 400, -0.02), (0, 0, 200, -0.01), (40, 25, 1000, 0.01), (3, 30, 150, -0.1),
])
def test_tango_score_test_matches_an_independent_restricted_mle(b: int, c: int, n: int, delta0: float) -> None:
    from scipy.stats import norm

    z, p = _stats.tango(b, c, n, delta0)
    expected = _restricted_score_z(b, c, n, delta0)
    assert float(z) == pytest.approx(expected, rel=1e-5)
    assert float(p) == pytest.approx(norm.sf(expected), rel=1e-4)


@pytest.mark.parametrize(("n", "p_b", "p_c", "delta0"), [
    (200, 0.05, 0.06, -0.01), (1000, 0.03, 0.05, -0.02), (100, 0.02, 0.04, -0.02), (5000, 0.10, 0.11, -0.01),
    (60, 0.05, 0.10, -0.05),
])
def test_tango_keeps_its_level_at_the_margin(n: int, p_b: float, p_c: float, delta0: float) -> None:
    """Simulated at the boundary of H0 (the candidate exactly `margin` worse): it rejects
    about 5 % of the time at alpha 0.05 — the non-inferiority claim's error rate."""
    assert p_b - p_c == pytest.approx(delta0)
    cells = np.random.default_rng(0).multinomial(n, [p_b, p_c, 1 - p_b - p_c], size=20_000)
    _, p = _stats.tango(cells[:, 0], cells[:, 1], n, delta0)
    assert 0.03 <= float(np.mean(p < 0.05)) <= 0.07


def test_a_challenger_inside_the_margin_passes_on_many_rows() -> None:
    """The reviewer's case: 100,000 rows, the candidate 0.5 points less accurate, a 1-point
    margin. The bootstrap CI lies inside the margin, and the paired test now agrees (McNemar's
    "not significantly worse" vetoed it with p = 0.00018)."""
    from conveyor.gates import assess, define_gate

    n = 100_000
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, n)
    cells = rng.choice(4, n, p=[0.86, 0.025, 0.03, 0.085])  # both right, only cand, only champ, both wrong
    cand = np.where((cells == 0) | (cells == 1), y, 1 - y)
    champ = np.where((cells == 0) | (cells == 2), y, 1 - y)
    loss = np.mean(cand == y) - np.mean(champ == y)
    assert -0.0065 < loss < -0.0035
    _, checks, _ = assess(define_gate(compare={"margin": 0.01}), y, cand, champ)
    compare = {c.name: c for c in checks if c.kind == "compare"}
    assert set(compare) == {"compare: paired bootstrap of accuracy", "compare: Tango score test"}
    assert all(c.passed for c in compare.values()), [c.summary for c in compare.values()]
    tango = compare["compare: Tango score test"].evidence
    assert tango["p_worse"] < 0.001 and tango["p_margin"] < 1e-4  # significantly worse, yet inside the margin
    _, tight, _ = assess(define_gate(compare={"margin": 0.002}), y, cand, champ)  # a margin it exceeds
    assert not any(c.passed for c in tight if c.kind == "compare")
    _, mcnemar_only, _ = assess(define_gate(compare={"margin": 0.01, "test": "mcnemar"}), y, cand, champ)
    assert [c.passed for c in mcnemar_only] == [True]  # test="mcnemar" tests the margin too


def test_superiority_margin_is_tested_for_accuracy() -> None:
    from conveyor.gates import assess, define_gate

    rng = np.random.default_rng(5)
    n = 20_000
    y = rng.integers(0, 3, n)
    cells = rng.choice(4, n, p=[0.8, 0.06, 0.03, 0.11])  # the candidate is 3 points better
    cand = np.where((cells == 0) | (cells == 1), y, (y + 1) % 3)
    champ = np.where((cells == 0) | (cells == 2), y, (y + 2) % 3)

    def passed(margin: float) -> list[bool | None]:
        spec = define_gate(compare={"mode": "superior", "margin": margin, "test": "mcnemar"})
        return [c.passed for c in assess(spec, y, cand, champ)[1]]

    assert passed(0.0) == [True] and passed(0.02) == [True] and passed(0.04) == [False]


def test_regression_margin_is_tested_in_loss_units() -> None:
    """A regressor slightly worse than the champion passes a non-inferiority margin it
    respects and fails one it does not, for mae, mse and rmse alike."""
    from conveyor.gates import assess, define_gate

    rng = np.random.default_rng(2)
    n = 4000
    y = rng.normal(size=n)
    champ = y + rng.normal(scale=0.5, size=n)
    cand = y + rng.normal(scale=0.52, size=n)
    for metric, loose, tight in (("mae", 0.06, 0.0), ("rmse", 0.08, 0.0), ("mse", 0.08, 0.0)):
        def wilcoxon(margin: float) -> Any:
            spec = define_gate(task="regression", compare={"metric": metric, "margin": margin, "test": "wilcoxon"})
            (check,) = assess(spec, y, cand, champ)[1]
            return check

        ok, veto = wilcoxon(loose), wilcoxon(tight)
        assert ok.passed and not veto.passed, (metric, ok.summary, veto.summary)
        assert ok.evidence["boundary"] > 0 and veto.evidence["boundary"] == 0


def test_wilcoxon_flags_a_worse_regressor_and_handles_identical_ones() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=300)
    good, bad = y + rng.normal(scale=0.1, size=300), y + rng.normal(scale=0.5, size=300)
    assert _stats.wilcoxon(y, bad, good, squared=True)["p_worse"] < 0.001
    assert _stats.wilcoxon(y, good, good, squared=False)["p_value"] == 1.0
