"""Data quality of a window against its reference (and an optional schema).

Per column: the missing rate (and the reference's), categories never seen in the
reference and the share of rows holding them, and the share of numeric values outside the
reference's range (or the schema's ``min``/``max`` when given).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from conveyor.monitoring._columns import NUMERIC
from conveyor.monitoring._summary import ColumnSummary, Summary


@dataclass(frozen=True)
class ColumnQuality:
    column: str
    missing_rate: float
    reference_missing_rate: float
    new_categories: tuple[str, ...] = ()
    new_category_rate: float = 0.0
    out_of_range_rate: float = 0.0
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class QualityReport:
    n_rows: int
    columns: dict[str, ColumnQuality]

    def to_dict(self) -> dict[str, Any]:
        return {"n_rows": self.n_rows, "columns": {k: asdict(v) for k, v in self.columns.items()}}


def check_quality(
    reference: Summary, current: Summary, columns: list[str], schema: Mapping[str, Mapping[str, Any]] | None = None
) -> QualityReport:
    """Missing rates, new categories and out-of-range shares of ``columns``.

    ``schema`` maps a column to ``{"min": …, "max": …, "categories": [...]}``; any key it
    gives overrides what the reference says.
    """
    schema = schema or {}
    out = {}
    for name in columns:
        ref, cur = reference[name], current[name]
        rule = schema.get(name, {})
        out[name] = _column(ref, cur, rule)
    return QualityReport(current.n_rows, out)


def _column(ref: ColumnSummary, cur: ColumnSummary, rule: Mapping[str, Any]) -> ColumnQuality:
    base = ColumnQuality(name := ref.name, cur.missing_rate, ref.missing_rate)
    if cur.n_valid == 0:
        return base
    if ref.kind == NUMERIC and ref.counts is None or "min" in rule or "max" in rule:
        low = rule.get("min", ref.min)
        high = rule.get("max", ref.max)
        if cur.min is None or (low is None and high is None):
            return base
        below = float(cur.cdf([low], "left")[0]) if low is not None else 0.0
        above = 1.0 - float(cur.cdf([high], "right")[0]) if high is not None else 0.0
        return ColumnQuality(name, base.missing_rate, base.reference_missing_rate,
                             out_of_range_rate=below + above, low=low, high=high)
    allowed = set(rule["categories"]) if "categories" in rule else set(ref.category_counts())
    if ref.other_count and "categories" not in rule:
        allowed = set()  # the reference had too many categories to know which are new
    current = cur.category_counts()
    new = sorted(k for k in current if k not in allowed) if allowed else []
    share = sum(current[k] for k in new) / cur.n_valid
    return ColumnQuality(name, base.missing_rate, base.reference_missing_rate, tuple(new[:50]), share)
