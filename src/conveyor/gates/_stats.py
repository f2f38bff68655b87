"""Paired comparisons of a candidate with the champion on the same examples.

* Paired bootstrap CI of the metric difference. For classification the metric depends
  only on how many examples fall in each (label, candidate prediction, champion
  prediction) cell, and resampling n rows with replacement gives those cell counts a
  Multinomial(n, cell frequencies) law, so the bootstrap draws the k³ cell counts directly:
  the same distribution as resampling rows, at O(B·k³) instead of O(B·n). Regression
  resamples rows in chunks (a weight matrix times five per-example sums).
* McNemar's test on the discordant pairs for accuracy, exact (binomial) at every size: it
  costs nothing and has no continuity correction to get wrong.
* A margin is tested as a margin. For accuracy, Tango's score test for the difference of
  paired proportions (Tango 1998, Stat Med 17:891): H0 Δ ≤ Δ0 against H1 Δ > Δ0, where Δ is
  the candidate's accuracy minus the champion's and Δ0 = −margin (non-inferiority) or
  +margin (superiority); with margin 0 it is McNemar's test, done exactly.
* Wilcoxon signed-rank test of per-example losses for regression, the differences shifted
  by the margin converted to loss units (see ``loss_margin``); it tests the pseudo-median
  of the loss differences, which equals their mean when they are symmetric.
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
    return interval(observed, m.improvement(metric, cand_scores, champ_scores), confidence, resamples, n)


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
    return interval(observed, np.concatenate(deltas), confidence, resamples, n)


def interval(observed: Array, deltas: Array, confidence: float, resamples: int, n: int) -> dict[str, Any]:
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
    """b = candidate right where the champion is wrong; c = the reverse. Exact binomial p-values."""
    from scipy import stats

    cand_right = cand == y
    champ_right = champ == y
    b = int(np.count_nonzero(cand_right & ~champ_right))
    c = int(np.count_nonzero(~cand_right & champ_right))
    if b + c == 0:
        p_two, p_worse, p_better = 1.0, 1.0, 1.0
    else:
        p_two = float(stats.binomtest(b, b + c, 0.5).pvalue)
        p_worse = float(stats.binomtest(c, b + c, 0.5, alternative="greater").pvalue)
        p_better = float(stats.binomtest(b, b + c, 0.5, alternative="greater").pvalue)
    return {
        "test": "McNemar exact",
        "candidate_only_right": b,
        "champion_only_right": c,
        "p_value": p_two,
        "p_worse": p_worse,
        "p_better": p_better,
        "n": int(len(y)),
    }


def tango(b: Any, c: Any, n: Any, delta0: float) -> tuple[Any, Any]:
    """Tango's score test of H0: p_b − p_c ≤ ``delta0`` for paired proportions → (z, one-sided p).

    ``b`` rows only the candidate gets right, ``c`` only the champion, ``n`` rows in all (scalars
    or arrays). The variance of b − c is taken at the maximum-likelihood cell probabilities
    restricted to p_b − p_c = delta0 (the closed-form root of Tango's quadratic).
    """
    from scipy import stats

    if not -1 < delta0 < 1:
        raise ValueError(f"a difference of proportions lies in (-1, 1), got {delta0}")
    b, c, n = (np.asarray(v, dtype=np.float64) for v in (b, c, n))
    qa = 2 * n
    qb = -(b + c) + (2 * n - b + c) * delta0
    qc = -c * delta0 * (1 - delta0)
    p_c = (-qb + np.sqrt(np.maximum(qb * qb - 4 * qa * qc, 0.0))) / (2 * qa)  # restricted MLE of P(only champion right)
    var = n * (2 * p_c + delta0 * (1 - delta0))
    diff = b - c - n * delta0
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(var > 0, diff / np.sqrt(np.where(var > 0, var, 1.0)), np.where(diff > 0, np.inf, -np.inf))
    return z, stats.norm.sf(z)


def paired_accuracy_test(y: Array, cand: Array, champ: Array, *, mode: str, margin: float) -> dict[str, Any]:
    """Is the candidate's accuracy above the champion's − margin (non_inferior) or + margin (superior)?

    ``p_margin`` is the one-sided p-value of H0 "not so": Tango's score test for margin > 0,
    McNemar's exact test for margin 0; the candidate passes when it is below alpha.
    """
    ev = mcnemar(y, cand, champ)
    b, c, n = ev["candidate_only_right"], ev["champion_only_right"], ev["n"]
    delta0 = -margin if mode == "non_inferior" else margin
    if margin == 0:
        p = ev["p_better"]
    else:
        z, p = tango(b, c, n, delta0)
        ev.update(test="Tango score test (paired proportions, McNemar shifted by the margin)", z=float(z),
                  mcnemar_p_value=ev["p_value"])
        p = float(p)
    ev.update(difference=(b - c) / n if n else 0.0, delta0=delta0, p_margin=p)
    return ev


def loss_margin(metric: str, margin: float, mode: str, y: Array, champ_metric: float) -> float:
    """The bound on the mean per-row loss difference (candidate − champion) that ``margin`` on
    ``metric`` means: H0 is "mean difference ≥ this". rmse and r2 convert through the
    champion's rmse and the label variance (mse is linear in the per-row squared errors)."""
    sign = 1.0 if mode == "non_inferior" else -1.0
    if metric in ("mae", "mse"):
        return sign * margin
    if metric == "rmse":  # rmse_c ≤ rmse_b ± m  ⟺  mse_c − mse_b ≤ (rmse_b ± m)² − rmse_b²
        return (champ_metric + sign * margin) ** 2 - champ_metric**2
    if metric == "r2":  # r2 = 1 − mse / var(y)
        return sign * margin * float(np.var(np.asarray(y, dtype=np.float64)))
    raise ValueError(f"no per-row loss for metric {metric!r}")


def wilcoxon(y: Array, cand: Array, champ: Array, *, squared: bool, boundary: float = 0.0) -> dict[str, Any]:
    """Signed-rank test of per-example loss differences (candidate − champion).

    ``p_margin`` tests H0 "the differences sit at or above ``boundary``" against "below it"
    (the differences shifted by ``boundary``, see ``loss_margin``).
    """
    from scipy import stats

    y = np.asarray(y, dtype=np.float64)
    loss_c = np.asarray(cand, dtype=np.float64) - y
    loss_b = np.asarray(champ, dtype=np.float64) - y
    loss_c, loss_b = (loss_c**2, loss_b**2) if squared else (np.abs(loss_c), np.abs(loss_b))
    diff = loss_c - loss_b

    def test(d: Array, alternative: str) -> float:
        nonzero = d[d != 0]
        if not nonzero.size:
            return 1.0
        method = "exact" if nonzero.size <= 50 and len(np.unique(np.abs(nonzero))) == nonzero.size else "approx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy notes zeros/ties; the approx method handles them
            return float(stats.wilcoxon(d, alternative=alternative, method=method).pvalue)

    return {
        "test": "Wilcoxon signed-rank",
        "loss": "squared error" if squared else "absolute error",
        "median_loss_difference": float(np.median(diff)),
        "mean_loss_difference": float(np.mean(diff)),
        "p_value": test(diff, "two-sided"),
        "p_worse": test(diff, "greater"),
        "p_better": test(diff, "less"),
        "boundary": float(boundary),
        "p_margin": test(diff - boundary, "less") if boundary else test(diff, "less"),
        "n": int(len(diff)),
        "nonzero_differences": int(np.count_nonzero(diff)),
    }
