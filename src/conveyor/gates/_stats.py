"""Paired comparisons of a candidate with the champion on the same examples.

* Paired bootstrap CI of the metric difference. For classification the metric depends
  only on how many examples fall in each (label, candidate prediction, champion
  prediction) cell, and resampling n rows with replacement gives those cell counts a
  Multinomial(n, cell frequencies) law, so the bootstrap draws the k³ cell counts directly:
  the same distribution as resampling rows, at O(B·k³) instead of O(B·n). Regression
  resamples rows in chunks (a weight matrix times five per-example sums).
* McNemar's test on the discordant pairs (exact binomial below 25 of them, chi-squared
  with continuity correction above) for accuracy.
* Wilcoxon signed-rank test of per-example losses for regression.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from conveyor.gates import _metrics as m

Array = Any
_CHUNK_CELLS = 4_000_000  # resamples × rows per chunk of the regression bootstrap (~32 MB)


def bootstrap_classification(
    encoded: m.Encoded, cand: Array, champ: Array, metric: str, *, resamples: int, confidence: float, seed: int
) -> dict[str, Any]:
    k = encoded.k
    cells = np.bincount((encoded.y * k + cand) * k + champ, minlength=k**3).astype(np.float64)
    n = int(cells.sum())
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, cells / n, size=resamples).reshape(resamples, k, k, k).astype(np.float64)
    fn = m.CLASSIFICATION[metric]
    cand_scores = fn(counts.sum(axis=3), encoded.positive)
    champ_scores = fn(counts.sum(axis=2), encoded.positive)
    observed = m.improvement(metric, fn(cells.reshape(k, k, k).sum(axis=2), encoded.positive),
                             fn(cells.reshape(k, k, k).sum(axis=1), encoded.positive))
    return _interval(observed, m.improvement(metric, cand_scores, champ_scores), confidence, resamples, n)


def bootstrap_regression(
    y: Array, cand: Array, champ: Array, metric: str, *, resamples: int, confidence: float, seed: int
) -> dict[str, Any]:
    stats = np.hstack([m.sums(y, cand), m.sums(y, champ)])  # (n, 10)
    n = stats.shape[0]
    rng = np.random.default_rng(seed)
    fn = m.REGRESSION[metric]
    chunk = max(1, _CHUNK_CELLS // max(n, 1))
    deltas = []
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        rows = rng.integers(0, n, size=(size, n), dtype=np.int32)
        offsets = (np.arange(size, dtype=np.int64) * n)[:, None]
        weights = np.bincount((rows + offsets).ravel(), minlength=size * n).reshape(size, n)
        totals = weights.astype(np.float64) @ stats
        deltas.append(m.improvement(metric, fn(totals[:, :5]), fn(totals[:, 5:])))
    whole = stats.sum(axis=0)
    observed = m.improvement(metric, fn(whole[:5]), fn(whole[5:]))
    return _interval(observed, np.concatenate(deltas), confidence, resamples, n)


def _interval(observed: Array, deltas: Array, confidence: float, resamples: int, n: int) -> dict[str, Any]:
    tail = (1 - confidence) / 2
    low, high = np.quantile(deltas, [tail, 1 - tail])
    return {
        "test": "paired bootstrap",
        "observed_improvement": float(observed),
        "ci_low": float(low),
        "ci_high": float(high),
        "confidence": confidence,
        "resamples": resamples,
        "n": n,
        "p_worse": float(np.mean(deltas < 0)),
    }


def mcnemar(y: Array, cand: Array, champ: Array) -> dict[str, Any]:
    """b = candidate right where the champion is wrong; c = the reverse."""
    from scipy import stats

    cand_right = cand == y
    champ_right = champ == y
    b = int(np.count_nonzero(cand_right & ~champ_right))
    c = int(np.count_nonzero(~cand_right & champ_right))
    if b + c == 0:
        p_two, p_worse, p_better, method = 1.0, 1.0, 1.0, "exact"
    elif b + c < 25:
        method = "exact"
        p_two = float(stats.binomtest(b, b + c, 0.5).pvalue)
        p_worse = float(stats.binomtest(c, b + c, 0.5, alternative="greater").pvalue)
        p_better = float(stats.binomtest(b, b + c, 0.5, alternative="greater").pvalue)
    else:
        method = "chi-squared (continuity corrected)"
        statistic = (abs(b - c) - 1) ** 2 / (b + c)
        p_two = float(stats.chi2.sf(statistic, 1))
        # one-sided p from the signed normal approximation with the same correction
        z = (abs(b - c) - 1) / np.sqrt(b + c)
        one = float(stats.norm.sf(z))
        p_worse, p_better = (one, 1 - one) if c > b else (1 - one, one)
    return {
        "test": f"McNemar {method}",
        "candidate_only_right": b,
        "champion_only_right": c,
        "p_value": p_two,
        "p_worse": p_worse,
        "p_better": p_better,
        "n": int(len(y)),
    }


def wilcoxon(y: Array, cand: Array, champ: Array, *, squared: bool) -> dict[str, Any]:
    """Signed-rank test of per-example loss differences (candidate − champion)."""
    from scipy import stats

    y = np.asarray(y, dtype=np.float64)
    loss_c = np.asarray(cand, dtype=np.float64) - y
    loss_b = np.asarray(champ, dtype=np.float64) - y
    loss_c, loss_b = (loss_c**2, loss_b**2) if squared else (np.abs(loss_c), np.abs(loss_b))
    diff = loss_c - loss_b
    nonzero = int(np.count_nonzero(diff))
    if nonzero == 0:
        p_worse = p_better = p_two = 1.0
    else:
        method = "exact" if nonzero <= 50 and len(np.unique(np.abs(diff[diff != 0]))) == nonzero else "approx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy notes zeros/ties; the approx method handles them
            p_worse = float(stats.wilcoxon(diff, alternative="greater", method=method).pvalue)
            p_better = float(stats.wilcoxon(diff, alternative="less", method=method).pvalue)
            p_two = float(stats.wilcoxon(diff, method=method).pvalue)
    return {
        "test": "Wilcoxon signed-rank",
        "loss": "squared error" if squared else "absolute error",
        "median_loss_difference": float(np.median(diff)),
        "p_value": p_two,
        "p_worse": p_worse,
        "p_better": p_better,
        "n": int(len(diff)),
        "nonzero_differences": nonzero,
    }
