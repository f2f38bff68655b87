"""Drift statistics, computed from two column summaries.

Each statistic is a ``StatTest``: a name, the column kinds it accepts, a default
threshold, and whether its value is a p-value (drift when ``value < threshold``) or a
distance (drift when ``value >= threshold``) — the same conventions and defaults as
Evidently, so verdicts can be compared. ``compute`` returns ``(value, exact)`` or
``(value, exact, statistics)``; the built-ins return every statistic they computed (KS's
``D``, the χ² statistic and its degrees of freedom, the z statistic, the raw Wasserstein
distance, the number of bins…), which ``ColumnDrift.statistics`` carries.

Two samples, not one: ``chisquare`` is the two-sample χ² test of homogeneity on the
2 × k table of reference and current counts (``scipy.stats.chi2_contingency``); when an
expected count is below 5 its p-value comes from 2,000 random permutations instead
(the current counts drawn from the pooled counts, multivariate hypergeometric, seeded).
The older goodness-of-fit test, ``chisquare_gof``, treats the reference's shares as the
true distribution; the reference is a sample too, so on small references it raises
false alarms far above its nominal level (about 23 % at 5 % for 200 reference rows).
Use it only when the reference is the population (or far larger than the window).

Exact or approximate: when both summaries kept their sorted values (columns with at most
``exact_limit`` values, 5,000 by default) the statistic is computed by SciPy on the data
itself, exactly as Evidently computes it. Otherwise it is computed from the quantile
sketches: KS from the two CDFs evaluated at both sketches' 2,001 quantiles, with the
asymptotic p-value for the *full* sample sizes; Wasserstein as ∫|Q_ref(u) − Q_cur(u)| du
on 4,000 probability midpoints; PSI and Jensen–Shannon from the CDFs at Evidently's bin
edges (Sturges' rule over the pooled range). The approximation error of a CDF is below
one sketch step (0.05 %), so verdicts differ from exact ones only at the threshold.
Columns with at most 20 distinct reference values are binned by value for PSI and
Jensen–Shannon, as Evidently does; empty bins get Evidently's small share for PSI.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from conveyor.errors import InvalidInput
from conveyor.monitoring._columns import CATEGORICAL, NUMERIC
from conveyor.monitoring._summary import ColumnSummary, levels

#: Evidently replaces empty bins by this share before PSI / Jensen–Shannon.
EMPTY_BIN = 0.0001


#: What ``StatTest.compute`` returns: (value, exact) or (value, exact, {statistic name: value}).
Computed = tuple[float, bool] | tuple[float, bool, dict[str, Any]]


@dataclass(frozen=True)
class StatTest:
    """One drift statistic. ``compute(ref, cur, as_categorical)`` → (value, exact[, statistics])."""

    name: str
    kinds: frozenset[str]
    threshold: float
    is_pvalue: bool
    compute: Callable[[ColumnSummary, ColumnSummary, bool], Computed]
    description: str
    #: KS counts p == threshold as drift, chi-squared and z do not (as in Evidently).
    inclusive: bool = False

    def drifted(self, value: float, threshold: float) -> bool:
        if self.is_pvalue:
            return value <= threshold if self.inclusive else value < threshold
        return value >= threshold


def _both_exact(ref: ColumnSummary, cur: ColumnSummary) -> bool:
    return ref.values is not None and cur.values is not None


def ks(ref: ColumnSummary, cur: ColumnSummary, as_categorical: bool = False) -> Computed:
    """Two-sample Kolmogorov–Smirnov p-value."""
    import numpy as np
    from scipy import stats

    if _both_exact(ref, cur):
        result = stats.ks_2samp(ref.values, cur.values)
        return float(result.pvalue), True, {"D": float(result.statistic), "p_value": float(result.pvalue)}
    points = np.concatenate([ref.quantile(levels()), cur.quantile(levels())])
    d = max(
        float(np.max(np.abs(ref.cdf(points, "right") - cur.cdf(points, "right")))),
        float(np.max(np.abs(ref.cdf(points, "left") - cur.cdf(points, "left")))),
    )
    n, m = ref.n_valid, cur.n_valid
    p = float(stats.kstwo.sf(d, np.round(n * m / (n + m))))
    return p, False, {"D": d, "p_value": p}


def wasserstein(ref: ColumnSummary, cur: ColumnSummary, as_categorical: bool = False) -> Computed:
    """First Wasserstein distance divided by the reference's standard deviation."""
    import numpy as np

    norm = max(ref.std or 0.0, 0.001)
    if _both_exact(ref, cur):
        from scipy import stats

        raw, exact = float(stats.wasserstein_distance(ref.values, cur.values)), True
    else:
        u = (np.arange(4000) + 0.5) / 4000
        raw, exact = float(np.mean(np.abs(ref.quantile(u) - cur.quantile(u)))), False
    return raw / norm, exact, {"distance": raw, "reference_std": norm, "normalized": raw / norm}


def _shares(
    ref: ColumnSummary, cur: ColumnSummary, as_categorical: bool, fill: bool = True
) -> tuple[Any, Any, bool]:
    """Binned shares of both columns, Evidently's way: categories, or Sturges bins."""
    import numpy as np

    if as_categorical or ref.counts is not None:  # few distinct values: count them, as Evidently does
        r, c = ref.category_counts(), cur.category_counts()
        keys = sorted(set(r) | set(c))
        rs = np.array([r.get(k, 0) for k in keys] + [ref.other_count], dtype=float)
        cs = np.array([c.get(k, 0) for k in keys] + [cur.other_count], dtype=float)
        if not rs[-1] and not cs[-1]:
            rs, cs = rs[:-1], cs[:-1]
        rs, cs = rs / max(ref.n_valid, 1), cs / max(cur.n_valid, 1)
        exact = True
    else:
        assert ref.min is not None and cur.min is not None and ref.max is not None and cur.max is not None
        lo, hi = min(ref.min, cur.min), max(ref.max, cur.max)
        n = ref.n_valid + cur.n_valid
        if hi > lo:
            bins = int(np.ceil((hi - lo) / ((hi - lo) / (np.log2(n) + 1.0))))
            edges = np.linspace(lo, hi, bins + 1)
        else:
            edges = np.array([lo - 0.5, lo + 0.5])
        inner = edges[1:-1]
        rs = np.diff(np.concatenate([[0.0], ref.cdf(inner, "left"), [1.0]]))
        cs = np.diff(np.concatenate([[0.0], cur.cdf(inner, "left"), [1.0]]))
        exact = _both_exact(ref, cur)
    if fill:
        rs, cs = _fill_empty(rs), _fill_empty(cs)
    return rs, cs, exact


def _fill_empty(shares: Any) -> Any:
    import numpy as np

    nonzero = shares[shares > 0]
    smallest = float(nonzero.min()) if nonzero.size else EMPTY_BIN
    return np.where(shares <= 0, smallest / 1e6 if smallest <= EMPTY_BIN else EMPTY_BIN, shares)


def psi(ref: ColumnSummary, cur: ColumnSummary, as_categorical: bool = False) -> Computed:
    """Population stability index, Σ (r − c)·ln(r / c)."""
    import numpy as np

    rs, cs, exact = _shares(ref, cur, as_categorical)
    value = float(np.sum((rs - cs) * np.log(rs / cs)))
    return value, exact, {"psi": value, "bins": len(rs)}


def jensenshannon(ref: ColumnSummary, cur: ColumnSummary, as_categorical: bool = False) -> Computed:
    """Jensen–Shannon distance (natural log), SciPy's ``jensenshannon``."""
    import numpy as np

    from scipy.spatial.distance import jensenshannon as scipy_jensenshannon

    rs, cs, exact = _shares(ref, cur, as_categorical, fill=False)
    p, q = np.asarray(rs, dtype=float), np.asarray(cs, dtype=float)
    value = float(scipy_jensenshannon(p, q))
    return value, exact, {"distance": value, "bins": len(p)}


def _categories(ref: ColumnSummary, cur: ColumnSummary, method: str) -> tuple[Any, Any]:
    """Reference and current counts over the union of categories (plus the capped rest)."""
    import numpy as np

    if ref.counts is None or cur.counts is None:
        raise InvalidInput(
            f"{method} needs categories, but column {ref.name!r} has {ref.n_unique} distinct numeric values",
            field="method", value=method, hint="use ks, wasserstein, psi or jensenshannon for it",
        )
    r, c = ref.category_counts(), cur.category_counts()
    keys = sorted(set(r) | set(c))
    rs = np.array([r.get(k, 0) for k in keys] + [ref.other_count], dtype=np.int64)
    cs = np.array([c.get(k, 0) for k in keys] + [cur.other_count], dtype=np.int64)
    return rs, cs


#: Permutations behind the p-value of ``chisquare`` when an expected count is below 5.
PERMUTATIONS = 2000


def chisquare(ref: ColumnSummary, cur: ColumnSummary, as_categorical: bool = True) -> Computed:
    """Two-sample χ² test of homogeneity (reference vs current counts), p-value; a seeded
    permutation p-value when an expected count is below 5."""
    import numpy as np
    from scipy import stats

    rs, cs = _categories(ref, cur, "chisquare")
    keep = (rs + cs) > 0
    table = np.vstack([rs[keep], cs[keep]])
    if table.shape[1] < 2:
        return 1.0, True, {"chi2": 0.0, "dof": 0, "p_value": 1.0}
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    result = stats.chi2_contingency(table, correction=False)
    statistic, dof = float(result.statistic), int(result.dof)
    if expected.min() >= 5:
        p = float(result.pvalue)
        return p, True, {"chi2": statistic, "dof": dof, "p_value": p}
    # few counts: the χ² law is unreliable; permute rows between the two samples instead
    rng = np.random.default_rng(0)
    pooled = table.sum(axis=0)
    cur_draws = rng.multivariate_hypergeometric(pooled, int(table[1].sum()), size=PERMUTATIONS)
    ref_draws = pooled - cur_draws
    null = (((ref_draws - expected[0]) ** 2 / expected[0]).sum(axis=1)
            + ((cur_draws - expected[1]) ** 2 / expected[1]).sum(axis=1))
    p = float((1 + np.count_nonzero(null >= statistic * (1 - 1e-12))) / (PERMUTATIONS + 1))
    return p, True, {"chi2": statistic, "dof": dof, "p_value": p, "permutations": PERMUTATIONS}


def chisquare_gof(ref: ColumnSummary, cur: ColumnSummary, as_categorical: bool = True) -> Computed:
    """χ² goodness of fit of the current counts to the reference *shares* (p-value).

    Caveat: it treats the reference sample as the true distribution and ignores its own
    sampling noise, so it raises too many false alarms unless the reference is far larger
    than the window; ``chisquare`` (two-sample) is the default for that reason.
    """
    import numpy as np
    from scipy import stats

    rs, cs = _categories(ref, cur, "chisquare_gof")
    observed = cs.astype(float)
    expected = rs.astype(float) * (cur.n_valid / max(ref.n_valid, 1))
    if np.any((expected == 0) & (observed > 0)):  # a category never seen in the reference
        return 0.0, True, {"chi2": float("inf"), "dof": int(np.count_nonzero(expected)), "p_value": 0.0}
    keep = expected > 0
    observed, expected = observed[keep], expected[keep]
    expected *= observed.sum() / expected.sum()  # capped categories: compare the kept ones
    result = stats.chisquare(observed, expected)
    p = float(result.pvalue)
    return p, True, {"chi2": float(result.statistic), "dof": int(len(observed) - 1), "p_value": p}


def ztest(ref: ColumnSummary, cur: ColumnSummary, as_categorical: bool = True) -> Computed:
    """Two-proportion z-test p-value for a column with two values."""
    import numpy as np
    from scipy.stats import norm

    r, c = ref.category_counts(), cur.category_counts()
    keys = sorted(set(r) | set(c))
    if len(keys) == 1:
        return 1.0, True, {"z": 0.0, "p_value": 1.0}
    n1, n2 = ref.n_valid, cur.n_valid
    p1, p2 = 1 - r.get(keys[0], 0) / n1, 1 - c.get(keys[0], 0) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    z = float((p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2)))
    p = float(2 * norm.sf(abs(z)))
    return p, True, {"z": z, "p_value": p}


NUM = frozenset({NUMERIC})
BOTH = frozenset({NUMERIC, CATEGORICAL})

#: The built-in statistics by name (third parties add theirs with ``register_stat_test``).
STAT_TESTS: dict[str, StatTest] = {
    "ks": StatTest("ks", NUM, 0.05, True, ks, "Kolmogorov–Smirnov p-value", inclusive=True),
    "wasserstein": StatTest("wasserstein", NUM, 0.1, False, wasserstein, "Wasserstein distance / std(ref)"),
    "psi": StatTest("psi", BOTH, 0.1, False, psi, "population stability index"),
    "jensenshannon": StatTest("jensenshannon", BOTH, 0.1, False, jensenshannon, "Jensen–Shannon distance"),
    "chisquare": StatTest("chisquare", BOTH, 0.05, True, chisquare,
                          "two-sample chi-squared (homogeneity) p-value; permutation p-value for small counts"),
    "chisquare_gof": StatTest("chisquare_gof", BOTH, 0.05, True, chisquare_gof,
                              "chi-squared goodness-of-fit p-value against the reference shares (caveat: treats "
                              "the reference as the population; too many false alarms on small references)"),
    "z": StatTest("z", BOTH, 0.05, True, ztest, "two-proportion z-test p-value (two values)"),
}


def register_stat_test(test: StatTest) -> None:
    """Add (or replace) a drift statistic, selectable by ``test.name``."""
    STAT_TESTS[test.name] = test


def get_stat_test(name: str) -> StatTest:
    try:
        return STAT_TESTS[name]
    except KeyError:
        raise InvalidInput(
            f"unknown drift method {name!r}", field="method", value=name,
            hint=f"choose one of {sorted(STAT_TESTS)} (or 'auto')",
        ) from None
