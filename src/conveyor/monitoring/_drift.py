"""Drift between a reference and a current window, per column and for the whole table.

Method choice when ``method="auto"`` (Evidently's rule, so verdicts compare):

* reference with ≤ 1,000 values: numeric columns with more than 5 distinct values → ``ks``;
  columns with 3–5 distinct values or categorical → ``chisquare``; two values → ``z``.
* more than 1,000 values: numeric with more than 5 distinct values → ``wasserstein``;
  otherwise ``jensenshannon``.

Every test the rule picks compares two samples (``chisquare`` is the two-sample χ² test,
see ``_stats``), so with no drift it raises an alarm at about its nominal rate, whatever
the sizes; ``tests/monitoring/test_false_alarms.py`` checks ≤ 7 % at 5 % by simulation.

Fallbacks, each noted on the column: a window with no values (empty, or all missing) gets
no verdict; a distance (``wasserstein``, ``psi``, ``jensenshannon``) on fewer than 30
current values is mostly noise, so the column falls back to a test that accounts for the
sample size (``ks`` for numeric columns, ``chisquare`` for categorical ones). Under
``auto`` a distance must also stand above its own sampling noise: when, with these sample
sizes and no drift at all, it would exceed its threshold more than 5 % of the time, the
column falls back to the test too. For Jensen–Shannon that chance is the χ² tail
P(χ²_{k−1} ≥ 8·n_eff·t²) (JS divergence ≈ Pearson's χ² / (8·n_eff), n_eff = n·m/(n+m));
for Wasserstein it is simulated from the reference's quantile function
(√n_eff · W₁ → ∫|B(u)| dQ(u), B a Brownian bridge; 2,000 seeded paths).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from conveyor.errors import InvalidInput
from conveyor.monitoring._columns import CATEGORICAL, NUMERIC
from conveyor.monitoring._quality import QualityReport, check_quality
from conveyor.monitoring._stats import get_stat_test
from conveyor.monitoring._summary import ColumnSummary, Summary, summarize

SMALL_REFERENCE = 1000
FEW_DISTINCT = 5
TINY = 30
DISTANCES = frozenset({"wasserstein", "psi", "jensenshannon"})


@dataclass(frozen=True)
class ColumnDrift:
    """The drift verdict of one column. ``value`` is a p-value or a distance (see ``method``)."""

    column: str
    kind: str
    role: str
    method: str
    threshold: float
    value: float | None
    drifted: bool
    status: str  # ok | empty
    exact: bool
    n_reference: int
    n_current: int
    note: str = ""
    #: Every statistic the method computed (KS: ``D`` and ``p_value``; χ²: ``chi2``, ``dof``…).
    statistics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DriftReport:
    """Per-column verdicts, the data-set verdict, prediction and label drift, and data quality."""

    columns: tuple[ColumnDrift, ...]
    drift_share: float | None
    n_drifted: int
    n_features: int
    dataset_drift: bool
    drift_share_threshold: float
    quality: QualityReport
    reference: Summary = field(repr=False)
    current: Summary = field(repr=False)

    def column(self, name: str) -> ColumnDrift:
        return next(c for c in self.columns if c.column == name)

    @property
    def prediction(self) -> ColumnDrift | None:
        return next((c for c in self.columns if c.role == "prediction"), None)

    @property
    def label(self) -> ColumnDrift | None:
        return next((c for c in self.columns if c.role == "target"), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "drift_share": self.drift_share,
            "n_drifted": self.n_drifted,
            "n_features": self.n_features,
            "dataset_drift": self.dataset_drift,
            "drift_share_threshold": self.drift_share_threshold,
            "prediction_drift": asdict(self.prediction) if self.prediction else None,
            "label_drift": asdict(self.label) if self.label else None,
            "columns": [asdict(c) for c in self.columns],
            "quality": self.quality.to_dict(),
            "reference": self.reference.label,
            "n_reference": self.reference.n_rows,
            "n_current": self.current.n_rows,
        }


def compare(
    reference: Any,
    current: Any,
    *,
    columns: Sequence[str] | None = None,
    method: str = "auto",
    methods: Mapping[str, str] | None = None,
    threshold: float | None = None,
    thresholds: Mapping[str, float] | None = None,
    drift_share: float = 0.5,
    prediction: str | None = None,
    target: str | None = None,
    schema: Mapping[str, Mapping[str, Any]] | None = None,
    tracker: Any = None,
) -> DriftReport:
    """Compare ``current`` with ``reference`` (each a ``Summary``, DataFrame, Arrow table or
    Parquet path, or with ``tracker`` a data set version ``"data:/name@3"``). ``method``/
    ``threshold`` apply to every column, ``methods``/``thresholds`` per column; the data set
    drifts when the share of drifted features is ≥ ``drift_share``. In remote mode (a
    ``tracker`` talking to a ``conveyor server``) a comparison naming a data set version is
    computed by the server (``POST /api/v1/monitoring/drift``); other tables are summarised here.

    Example::

        report = compare(summarize(train_df), live_df, prediction="score")
        report.drift_share, report.column("age").drifted
        compare("data:/train@1", "data:/live@4", tracker=tracker)
    """
    if tracker is not None and any(_is_ref(s) for s in (reference, current)):
        options = {"columns": list(columns) if columns is not None else None, "method": method,
                   "methods": dict(methods or {}), "threshold": threshold, "thresholds": dict(thresholds or {}),
                   "drift_share": drift_share, "prediction": prediction, "target": target,
                   "schema": {k: dict(v) for k, v in schema.items()} if schema else None}
        if getattr(tracker, "http", None) is not None:
            from conveyor.monitoring._remote import remote_drift, summary_to_wire

            def side(table: Any) -> dict[str, Any]:
                if _is_ref(table):
                    return {"data": table}
                return {"summary": summary_to_wire(table if isinstance(table, Summary) else summarize(table))}

            return remote_drift(tracker, side(reference), side(current), **options)[0]
        from conveyor.data import load

        reference, current = (load(s, tracker=tracker) if _is_ref(s) else s for s in (reference, current))
    ref = reference if isinstance(reference, Summary) else summarize(reference)
    names = _columns(ref, current, columns)
    cur = current if isinstance(current, Summary) else summarize(current, columns=names)
    _check_columns(ref, cur, names)
    methods, thresholds = dict(methods or {}), dict(thresholds or {})
    results = []
    for name in names:
        role = "prediction" if name == prediction else "target" if name == target else "feature"
        chosen = methods.get(name, method)
        results.append(_drift(ref[name], cur[name], role, chosen, thresholds.get(name, threshold)))
    features = [r for r in results if r.role == "feature" and r.status == "ok"]
    drifted = sum(r.drifted for r in features)
    share = drifted / len(features) if features else None
    return DriftReport(
        tuple(results), share, drifted, len(features),
        share is not None and share >= drift_share, drift_share,
        check_quality(ref, cur, names, schema), ref, cur,
    )


def _is_ref(table: Any) -> bool:
    return isinstance(table, str) and table.startswith("data:/")


def _columns(ref: Summary, current: Any, columns: Sequence[str] | None) -> list[str]:
    if columns is not None:
        return list(columns)
    if isinstance(current, Summary):
        have = list(current.columns)
    else:
        from conveyor.monitoring._columns import open_source

        have = [n for n, k in open_source(current).kinds.items() if k is not None]
    missing = [n for n in ref.columns if n not in have]
    extra = [n for n in have if n not in ref.columns]
    if missing or extra:
        raise InvalidInput(
            f"reference and current have different columns: current lacks {missing}, "
            f"has extra {extra}",
            field="columns", value={"missing": missing, "extra": extra},
            hint="pass columns=[...] to compare only the shared ones, or fix the window",
        )
    return list(ref.columns)


def _check_columns(ref: Summary, cur: Summary, names: list[str]) -> None:
    missing_ref = [n for n in names if n not in ref.columns]
    missing_cur = [n for n in names if n not in cur.columns]
    if missing_ref or missing_cur:
        raise InvalidInput(
            f"columns missing from the reference: {missing_ref}; from the current window: {missing_cur}",
            field="columns", value=missing_ref + missing_cur,
            hint=f"the reference has {list(ref.columns)}",
        )
    clash = [f"{n} ({ref[n].kind} vs {cur[n].kind})" for n in names if ref[n].kind != cur[n].kind]
    if clash:
        raise InvalidInput(
            f"columns changed type between reference and current: {', '.join(clash)}",
            field="columns", value=clash, hint="cast the window's columns to the reference's types",
        )


def auto_method(ref: ColumnSummary, cur: ColumnSummary) -> str:
    """Evidently's default choice by type, distinct values and reference size."""
    distinct = _distinct(ref, cur)
    few = ref.kind == CATEGORICAL or distinct <= FEW_DISTINCT
    if ref.n_valid <= SMALL_REFERENCE:
        if not few:
            return "ks"
        return "chisquare" if distinct > 2 else "z"
    return "jensenshannon" if few else "wasserstein"


def _distinct(ref: ColumnSummary, cur: ColumnSummary) -> int:
    if ref.counts is not None and cur.counts is not None:
        return len(set(ref.counts) | set(cur.counts)) + (1 if ref.other_count or cur.other_count else 0)
    return max(ref.n_unique, cur.n_unique)


#: Under ``auto``, a distance whose chance of exceeding its threshold without drift is above
#: this falls back to the test.
NOISE_LEVEL = 0.05


def _drift(ref: ColumnSummary, cur: ColumnSummary, role: str, method: str, threshold: float | None) -> ColumnDrift:
    def result(m: str, thr: float, value: float | None, drifted: bool, status: str, exact: bool, note: str,
               statistics: dict[str, Any] | None = None) -> ColumnDrift:
        return ColumnDrift(ref.name, ref.kind, role, m, thr, value, drifted, status, exact,
                           ref.n_valid, cur.n_valid, note, dict(statistics or {}))

    if ref.n_valid == 0 or cur.n_valid == 0:
        where = "reference" if ref.n_valid == 0 else "current window"
        return result(method, threshold or 0.0, None, False, "empty", False,
                      f"the {where} has no values in this column (empty or all missing): no verdict")
    note = ""
    chosen = auto_method(ref, cur) if method == "auto" else method
    fallback = "chisquare" if ref.kind == CATEGORICAL or ref.counts is not None else "ks"
    if chosen in DISTANCES and cur.n_valid < TINY:
        note = f"{cur.n_valid} current values are too few for {chosen}; fell back to {fallback}"
        chosen = fallback
    elif method == "auto" and chosen in DISTANCES:
        test = get_stat_test(chosen)
        chance = null_exceedance(chosen, ref, cur, threshold if threshold is not None else test.threshold)
        if chance is not None and chance > NOISE_LEVEL:
            note = (f"with {ref.n_valid} reference and {cur.n_valid} current values, {chosen} would exceed its "
                    f"threshold without any drift {chance:.0%} of the time; fell back to {fallback}")
            chosen = fallback
    test = get_stat_test(chosen)
    if ref.kind not in test.kinds:
        raise InvalidInput(
            f"{chosen} does not apply to {ref.kind} column {ref.name!r}", field="method", value=chosen,
            hint="categorical columns take chisquare, chisquare_gof, z, psi or jensenshannon",
        )
    thr = test.threshold if threshold is None or note else threshold
    computed = test.compute(ref, cur, ref.kind != NUMERIC)
    value, exact = computed[0], computed[1]
    statistics = computed[2] if len(computed) > 2 else {}  # type: ignore[misc]
    return result(chosen, thr, value, test.drifted(value, thr), "ok", exact, note, statistics)


def null_exceedance(method: str, ref: ColumnSummary, cur: ColumnSummary, threshold: float) -> float | None:
    """The chance that ``method``'s distance reaches ``threshold`` between two samples of
    these sizes drawn from the reference's own distribution (no drift); None if unknown."""
    import numpy as np

    n_eff = ref.n_valid * cur.n_valid / (ref.n_valid + cur.n_valid)
    if method == "jensenshannon":
        from scipy import stats

        if ref.counts is not None:
            bins = len(ref.counts) + (1 if ref.other_count else 0)
        else:
            bins = int(np.ceil(np.log2(ref.n_valid + cur.n_valid) + 1.0))  # Sturges, as _stats bins
        if bins < 2:
            return 0.0
        return float(stats.chi2.sf(8 * n_eff * threshold**2, bins - 1))
    if method == "wasserstein":
        norm = max(ref.std or 0.0, 0.001)
        grid = np.linspace(0.0, 1.0, _BRIDGE_STEPS + 1)
        steps = np.diff(ref.quantile(grid))  # dQ over each cell of u
        integral = _bridges() @ steps  # ∫|B(u)| dQ(u), one per simulated path
        return float(np.mean(integral >= threshold * norm * np.sqrt(n_eff)))
    return None


_BRIDGE_STEPS = 200
_BRIDGE_CACHE: list[Any] = []


def _bridges() -> Any:
    """|B(u)| at the midpoints of ``_BRIDGE_STEPS`` cells for 2,000 seeded Brownian bridges."""
    if not _BRIDGE_CACHE:
        import numpy as np

        rng = np.random.default_rng(0)
        walk = np.cumsum(rng.normal(scale=np.sqrt(1 / (2 * _BRIDGE_STEPS)), size=(2000, 2 * _BRIDGE_STEPS)), axis=1)
        u = np.arange(1, 2 * _BRIDGE_STEPS + 1) / (2 * _BRIDGE_STEPS)
        bridge = walk - u * walk[:, -1:]
        _BRIDGE_CACHE.append(np.abs(bridge[:, 0::2]))  # u = (2i+1)/(2·steps): the cells' midpoints
    return _BRIDGE_CACHE[0]
