"""Slices: the metric on every value of named categorical columns and on quantile bins of
numeric ones; each judged slice must pass the slice thresholds; the worst are reported."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from conveyor.errors import InvalidInput
from conveyor.gates._metrics import LOWER_IS_BETTER
from conveyor.gates._result import Check

if TYPE_CHECKING:
    from conveyor.gates._assess import Scored
    from conveyor.gates._spec import GateSpec


def _groups(spec: GateSpec, frame: Any) -> list[tuple[str, list[tuple[str, Any]]]]:
    """(column, [(slice label, boolean mask)…]) for every sliced column."""
    import pandas as pd

    assert spec.slices is not None
    out = []
    named = list(dict.fromkeys([*spec.slices.columns, *spec.slices.protected]))
    wanted = [(c, None) for c in named] + list(spec.slices.bins.items())
    for column, bins in wanted:
        if column not in frame.columns:
            key = "bins" if bins is not None else "columns" if column in spec.slices.columns else "protected"
            raise InvalidInput(
                f"{spec.prefix}.slices.{key} names column {column!r}, absent from the evaluation data",
                field=f"{spec.prefix}.slices.{key}", value=column,
                hint=f"columns: {', '.join(map(str, list(frame.columns)[:20]))}",
            )
        series = frame[column]
        if bins is None:
            codes, uniques = pd.factorize(series, sort=True)
            labels = [str(u) for u in uniques]
            groups = [(labels[i], codes == i) for i in range(len(labels))]
            if (codes < 0).any():
                groups.append(("(missing)", codes < 0))
        else:
            values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
            edges = np.unique(np.nanquantile(values, np.linspace(0, 1, bins + 1)))
            index = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, max(len(edges) - 2, 0))
            groups = [
                (f"[{edges[i]:.4g}, {edges[i + 1]:.4g}{']' if i == len(edges) - 2 else ')'}",
                 (index == i) & ~np.isnan(values))
                for i in range(max(len(edges) - 1, 1))
            ]
            if np.isnan(values).any():
                groups.append(("(missing)", np.isnan(values)))
        out.append((column, groups))
    return out


def slice_checks(spec: GateSpec, scored: Scored, frame: Any) -> tuple[list[Check], list[dict[str, Any]]]:
    assert spec.slices is not None
    settings = spec.slices
    thresholds = spec.slice_thresholds()
    rank = thresholds[0].metric if thresholds else spec.compare_metric
    checks: list[Check] = []
    rows: list[dict[str, Any]] = []
    for column, groups in _groups(spec, frame):
        column_rows = []
        for label, mask in groups:
            n = int(np.count_nonzero(mask))
            if n == 0:
                continue
            values: dict[str, dict[str, float] | None] = {
                who: scored.of(who, mask) for who in ("candidate", "champion", "baseline")}
            mine = values["candidate"]
            assert mine is not None
            judged = n >= settings.min_size
            failed = []
            for threshold in thresholds if judged else []:
                passed, _, _ = threshold.check(values)
                if passed is False:
                    failed.append(threshold.text)
            column_rows.append({
                "column": column, "value": label, "n": n, "metric": rank,
                "score": mine[rank],
                "champion_score": (values["champion"] or {}).get(rank),
                "judged": judged,
                "passed": (not failed) if judged and thresholds else None,
                "failed": failed,
            })
        rows += column_rows
        bad = [r for r in column_rows if r["passed"] is False]
        worst = _sorted(column_rows, rank)[:1]
        worst_text = (
            f"worst {column}={worst[0]['value']}: {rank} {worst[0]['score']:.4f} (n={worst[0]['n']})" if worst else "no rows"
        )
        verdict: bool | None = (not bad) if thresholds else None
        protected = column in settings.protected
        checks.append(Check(
            f"slices{' (protected)' if protected else ''}: {column}", "slices", verdict,
            f"{len(bad)} of {len(column_rows)} slices fail {', '.join(settings.thresholds) or '(no thresholds)'}; {worst_text}",
            {"slices": len(column_rows), "failing": [f"{r['column']}={r['value']}" for r in bad],
             "min_size": settings.min_size, "protected": protected},
        ))
    return checks, _sorted(rows, rank)


def _sorted(rows: list[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    return sorted(rows, key=lambda r: sign * r["score"])
