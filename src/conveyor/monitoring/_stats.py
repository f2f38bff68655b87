"""Drift statistics, computed from two column summaries.

Each statistic is a ``StatTest``: a name, the column kinds it accepts, a default
threshold, and whether its value is a p-value (drift when ``value < threshold``) or a
distance (drift when ``value >= threshold``) — the same conventions and defaults as
Evidently, so verdicts can be compared.

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


@dataclass(frozen=True)
class StatTest:
    """One drift statistic. ``compute(ref, cur, as_categorical)`` → (value, exact)."""

    name: str
    kinds: frozenset[str]
    threshold: float
    is_pvalue: bool
    compute: Callable[[ColumnSummary, ColumnSummary, bool], tuple[float, bool]]
    description: str
    #: KS counts p == threshold as drift, chi-squared and z do not (as in Evidently).
    inclusive: bool = False

    def drifted(self, value: float, threshold: float) -> bool:
        if self.is_pvalue:
            return value <= threshold if self.inclusive else value < threshold
        return value >= threshold


def _both_exact(ref: ColumnSummary, cur: ColumnSummary) -> bool:
    return ref.values is not None and cur.values is not None


def ks(ref: ColumnSummary, cur: ColumnSummary, as_categorical: bool = False) -> tuple[float, bool]:
    """Two-sample Kolmogorov–Smirnov p-value."""
    import numpy as np
    from scipy import stats

    if _both_exact(ref, cur):
        return float(stats.ks_2samp(ref.values, cur.values).pvalue), True
    points = np.concatenate([ref.quantile(levels()), cur.quantile(levels())])
    d = max(
        float(np.max(np.abs(ref.cdf(points, "right") - cur.cdf(points, "right")))),
        float(np.max(np.abs(ref.cdf(points, "left") - cur.cdf(points, "left")))),
    )
    n, m = ref.n_valid, cur.n_valid
    return float(stats.kstwo.sf(d, np.round(n * m / (n + m)))), False


def wasserstein(ref: ColumnSummary, cur: ColumnSummary, as_categorical: bool = False) -> tuple[float, bool]:
    """First Wasserstein distance divided by the reference's standard deviation."""
    import numpy as np

    norm = max(ref.std or 0.0, 0.001)
    if _both_exact(ref, cur):
        from scipy import stats

        return float(stats.wasserstein_distance(ref.values, cur.values)) / norm, True
    u = (np.arange(4000) + 0.5) / 4000
    return float(np.mean(np.abs(ref.quantile(u) - cur.quantile(u)))) / norm, False


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


def psi(ref: ColumnSummary, cur: ColumnSummary, as_categorical: bool = False) -> tuple[float, bool]:
    """Population stability index, Σ (r − c)·ln(r / c)."""
    import numpy as np

    rs, cs, exact = _shares(ref, cur, as_categorical)
    return float(np.sum((rs - cs) * np.log(rs / cs))), exact


def jensenshannon(ref: ColumnSummary, cur: ColumnSummary, as_categorical: bool = False) -> tuple[float, bool]:
    """Jensen–Shannon distance (natural log), SciPy's ``jensenshannon``."""
    import numpy as np

    from scipy.spatial.distance import jensenshannon as scipy_jensenshannon

    rs, cs, exact = _shares(ref, cur, as_categorical, fill=False)
    return float(scipy_jensenshannon(np.asarray(rs, dtype=float), np.asarray(cs, dtype=float))), exact


def chisquare(ref: ColumnSummary, cur: ColumnSummary, as_categorical: bool = True) -> tuple[float, bool]:
    """Chi-squared goodness of fit of the current counts to the reference shares (p-value)."""
    import numpy as np
    from scipy import stats

    r, c = ref.category_counts(), cur.category_counts()
    if ref.counts is None or cur.counts is None:
        raise InvalidInput(
            f"chisquare needs categories, but column {ref.name!r} has {ref.n_unique} distinct numeric values",
            field="method", value="chisquare", hint="use ks, wasserstein, psi or jensenshannon for it",
        )
    keys = sorted(set(r) | set(c))
    observed = np.array([c.get(k, 0) for k in keys], dtype=float)
    expected = np.array([r.get(k, 0) for k in keys], dtype=float) * (cur.n_valid / max(ref.n_valid, 1))
    if np.any((expected == 0) & (observed > 0)):
        return 0.0, True  # a category never seen in the reference: infinitely unlikely under it
    keep = expected > 0
    observed, expected = observed[keep], expected[keep]
    expected *= observed.sum() / expected.sum()  # capped categories: compare the kept ones
    return float(stats.chisquare(observed, expected).pvalue), True


def ztest(ref: ColumnSummary, cur: ColumnSummary, as_categorical: bool = True) -> tuple[float, bool]:
    """Two-proportion z-test p-value for a column with two values."""
    import numpy as np
    from scipy.stats import norm

    r, c = ref.category_counts(), cur.category_counts()
    keys = sorted(set(r) | set(c))
    if len(keys) == 1:
        return 1.0, True
    n1, n2 = ref.n_valid, cur.n_valid
    p1, p2 = 1 - r.get(keys[0], 0) / n1, 1 - c.get(keys[0], 0) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return float(2 * (1 - norm.cdf(abs(z)))), True


NUM = frozenset({NUMERIC})
BOTH = frozenset({NUMERIC, CATEGORICAL})

#: The built-in statistics by name (third parties add theirs with ``register_stat_test``).
STAT_TESTS: dict[str, StatTest] = {
    "ks": StatTest("ks", NUM, 0.05, True, ks, "Kolmogorov–Smirnov p-value", inclusive=True),
    "wasserstein": StatTest("wasserstein", NUM, 0.1, False, wasserstein, "Wasserstein distance / std(ref)"),
    "psi": StatTest("psi", BOTH, 0.1, False, psi, "population stability index"),
    "jensenshannon": StatTest("jensenshannon", BOTH, 0.1, False, jensenshannon, "Jensen–Shannon distance"),
    "chisquare": StatTest("chisquare", BOTH, 0.05, True, chisquare, "chi-squared p-value"),
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
