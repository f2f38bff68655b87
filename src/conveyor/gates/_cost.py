"""ML Test Score Data 3, "no feature's cost is too much": what each input column costs the
candidate at inference, next to what it brings (its permutation importance).

Time: the candidate predicts the evaluation rows as they are and with one column held at its
most frequent value; the two are timed in pairs, interleaved (the order alternates) so a
change of machine load hits both, and the median of the paired differences is kept. That is
the part of the predict time that depends on the column's values (encoding its categories,
scaling, the tree paths it opens). It is not the cost of computing the column upstream, nor
of a model retrained without it: a model that touches every column the same way whatever its
value shows about 0 for each. Memory: the column's bytes per row in Arrow, the format of the
data sets and the prediction log.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

from conveyor.errors import InvalidInput
from conveyor.gates._result import Check
from conveyor.gates._spec import GateSpec


def cost_check(spec: GateSpec, model: Any, features: Any, benefit: dict[str, Any] | None) -> Check:
    """Per feature: the predict time it adds (ms per 1,000 rows and share of the whole
    predict time), its Arrow bytes per row and, from the feature check, its importance.
    With ``max_cost_share`` a feature adding a larger share of the predict time fails."""
    fs = spec.features
    assert fs is not None
    if not hasattr(features, "columns"):
        raise InvalidInput(f"{spec.prefix}.features.cost needs named input columns",
                           field=f"{spec.prefix}.features.cost",
                           hint="evaluate on a table (DataFrame, data:/ set or a .parquet/.csv file)")
    frame = features.reset_index(drop=True)
    if len(frame) > fs.max_rows:
        picked = np.random.default_rng(fs.seed).choice(len(frame), fs.max_rows, replace=False)
        frame = frame.iloc[np.sort(picked)].reset_index(drop=True)
    rows = len(frame)
    if rows == 0 or len(frame.columns) == 0:
        raise InvalidInput(f"{spec.prefix}.features.cost needs evaluation rows and input columns; the evaluation "
                           f"data has {rows} row(s) and {len(frame.columns)} input column(s)",
                           field=f"{spec.prefix}.features.cost", hint="give the gate a non-empty held-out set")

    model.predict(frame)  # warm-up: imports, caches and lazy set-up are not a feature's cost
    importance = (benefit or {}).get("importance") or {}
    lower = (benefit or {}).get("lower") or {}
    measured: dict[str, dict[str, Any]] = {}
    full_times: list[float] = []
    for column in frame.columns:
        held = _held(frame, column)
        model.predict(held)
        deltas, fulls = [], []
        for repeat in range(fs.cost_repeats):
            order = (frame, held) if repeat % 2 == 0 else (held, frame)
            spent = []
            for rows_in in order:
                start = time.perf_counter()
                model.predict(rows_in)
                spent.append(time.perf_counter() - start)
            full, reduced = spent if repeat % 2 == 0 else spent[::-1]
            fulls.append(full)
            deltas.append(full - reduced)
        full_times += fulls
        delta = statistics.median(deltas)
        spread = statistics.median(abs(d - delta) for d in deltas)
        name = str(column)
        measured[name] = {
            "ms_per_1000": delta * 1000 * 1000 / rows,
            "spread_ms_per_1000": spread * 1000 * 1000 / rows,
            "share": delta / max(statistics.median(fulls), 1e-12),
            "bytes_per_row": _arrow_bytes(frame[column]) / rows,
            "importance": importance.get(name),
            "importance_lower": lower.get(name),
        }
    whole = statistics.median(full_times)
    over = sorted((c for c, e in measured.items() if fs.max_cost_share is not None and e["share"] > fs.max_cost_share),
                  key=lambda c: -measured[c]["share"])
    unhelpful = sorted((c for c, e in measured.items()
                        if e["importance_lower"] is not None and e["importance_lower"] <= fs.min_importance
                        and e["ms_per_1000"] > 2 * e["spread_ms_per_1000"] and e["ms_per_1000"] > 0),
                       key=lambda c: -measured[c]["share"])
    ranked = sorted(measured, key=lambda c: -measured[c]["share"])
    top = ranked[0]
    summary = (f"predict {whole * 1e6 / rows:.3f} ms per 1,000 rows; costliest {top} "
               f"({measured[top]['ms_per_1000']:+.3f} ms, {measured[top]['share']:.0%}, "
               f"{measured[top]['bytes_per_row']:.1f} B/row)")
    if fs.max_cost_share is not None:
        summary = (f"{len(over)} of {len(measured)} feature(s) above {fs.max_cost_share:.0%} of the predict time"
                   + (f": {', '.join(over[:5])}" if over else "") + "; " + summary)
    if unhelpful:
        summary += f"; cost without shown benefit: {', '.join(unhelpful[:5])}"
    title = "features: cost per feature" + (f" ≤ {fs.max_cost_share:.0%} of predict time" if fs.max_cost_share else "")
    return Check(title, "feature_cost", not over, summary, {
        "method": "paired, interleaved predict timings: evaluation rows as they are vs. the column held at its most "
                  "frequent value; median of the differences",
        "rows": rows, "repeats": fs.cost_repeats, "predict_ms_per_1000": whole * 1e6 / rows,
        "features": measured, "max_cost_share": fs.max_cost_share, "over": over,
        "cost_without_benefit": unhelpful, "benefit": "permutation importance" if importance else None,
    })


def _held(frame: Any, column: Any) -> Any:
    """``frame`` with ``column`` held at its most frequent value (its type kept)."""
    values = frame[column]
    modes = values.mode(dropna=True)
    held = frame.copy()
    if len(modes):
        filled = values.copy()
        filled[:] = modes.iloc[0]
        held[column] = filled
    return held


def _arrow_bytes(values: Any) -> float:
    """Total Arrow bytes of the column (data, offsets and validity)."""
    import pyarrow as pa

    try:
        return float(pa.Array.from_pandas(values).nbytes)
    except (pa.ArrowException, TypeError, ValueError):  # mixed Python objects: pandas' deep count
        return float(values.memory_usage(deep=True, index=False))
