"""Summaries of a table, computed once, small, and enough for every drift statistic.

Per numeric column: row and missing counts, min/max/mean/std, the number of distinct
values, a quantile sketch (the exact quantiles of the column at ``QUANTILE_LEVELS``
evenly spaced probabilities) and, when the column has at most ``exact_limit`` values, the
sorted values themselves (so that tests on small data are exact). Columns with few
distinct values also keep their value counts. Per categorical column: value counts of the
``MAX_CATEGORIES`` most frequent categories plus the count of the rest.

The summary of a 1,000,000 × 100 table is ~1.6 MB (2,001 float64 quantiles per column):
a monitor compares a window against it and never re-reads the training set.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from conveyor.errors import CorruptObject, InvalidInput
from conveyor.monitoring._columns import CATEGORICAL, DEFAULT_CHUNK, NUMERIC, ColumnChunk, open_source

QUANTILE_LEVELS = 2001
EXACT_LIMIT = 5000
MAX_CATEGORIES = 1000
#: Numeric columns with at most this many distinct values also keep their value counts.
FEW_VALUES = 20
FORMAT = "conveyor.monitoring.summary/1"


def levels() -> Any:
    import numpy as np

    return np.linspace(0.0, 1.0, QUANTILE_LEVELS)


@dataclass(frozen=True, eq=False)
class ColumnSummary:
    """What drift and quality statistics need to know about one column."""

    name: str
    kind: str
    n: int
    n_missing: int
    n_unique: int = 0
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    quantiles: Any = None
    values: Any = None
    counts: dict[str, int] | None = None
    other_count: int = 0

    @property
    def n_valid(self) -> int:
        return self.n - self.n_missing

    @property
    def missing_rate(self) -> float:
        return self.n_missing / self.n if self.n else 0.0

    def cdf(self, x: Any, side: Literal["left", "right"] = "left") -> Any:
        """P(X < x) (``side="left"``) or P(X ≤ x), exact from the values when kept, else
        interpolated linearly between the sketch's quantiles."""
        import numpy as np

        x = np.asarray(x, dtype=np.float64)
        if self.n_valid == 0:
            return np.zeros_like(x)
        if self.values is not None:
            return np.searchsorted(self.values, x, side=side) / self.n_valid
        q, p = self.quantiles, levels()
        idx = np.searchsorted(q, x, side="right")
        inner = np.clip(idx, 1, len(q) - 1)
        lo, hi = q[inner - 1], q[inner]
        width = np.where(hi > lo, hi - lo, 1.0)
        frac = np.clip((x - lo) / width, 0.0, 1.0)
        out = p[inner - 1] + frac * (p[inner] - p[inner - 1])
        return np.where(idx == 0, 0.0, np.where(idx >= len(q), 1.0, out))

    def quantile(self, u: Any) -> Any:
        """The quantile function at probabilities ``u`` (inverse of ``cdf``)."""
        import numpy as np

        u = np.asarray(u, dtype=np.float64)
        if self.values is not None:
            idx = np.clip(np.ceil(u * self.n_valid).astype(np.int64) - 1, 0, self.n_valid - 1)
            return self.values[idx]
        return np.interp(u, levels(), self.quantiles)

    def category_counts(self) -> dict[str, int]:
        return dict(self.counts or {})


@dataclass(frozen=True, eq=False)
class Summary:
    """The summaries of every column of a table (a reference or a window)."""

    n_rows: int
    columns: dict[str, ColumnSummary]
    skipped: tuple[str, ...] = ()
    created_at: float = field(default_factory=time.time)
    label: str = ""

    def __getitem__(self, name: str) -> ColumnSummary:
        return self.columns[name]

    # -- serialisation: one .npz object, no pickles -----------------------------------------------
    def to_bytes(self) -> bytes:
        """A compressed NumPy archive (loaded with ``allow_pickle=False``)."""
        import numpy as np

        arrays: dict[str, Any] = {}
        meta_columns = []
        for i, col in enumerate(self.columns.values()):
            meta_columns.append({
                "name": col.name, "kind": col.kind, "n": col.n, "n_missing": col.n_missing,
                "n_unique": col.n_unique, "min": col.min, "max": col.max, "mean": col.mean,
                "std": col.std, "counts": col.counts, "other_count": col.other_count,
            })
            if col.quantiles is not None:
                arrays[f"q{i}"] = col.quantiles
            if col.values is not None:
                arrays[f"v{i}"] = col.values
        meta = {"format": FORMAT, "n_rows": self.n_rows, "skipped": list(self.skipped),
                "created_at": self.created_at, "label": self.label, "columns": meta_columns}
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Summary:
        import numpy as np

        try:
            archive = np.load(io.BytesIO(data), allow_pickle=False)
            meta = json.loads(bytes(archive["meta"]).decode())
        except (ValueError, KeyError, OSError) as exc:
            raise CorruptObject(f"not a conveyor drift summary: {exc}") from exc
        if meta.get("format") != FORMAT:
            raise CorruptObject(f"unknown summary format {meta.get('format')!r}; expected {FORMAT}")
        columns = {}
        for i, m in enumerate(meta["columns"]):
            columns[m["name"]] = ColumnSummary(
                **m,
                quantiles=archive[f"q{i}"] if f"q{i}" in archive else None,
                values=archive[f"v{i}"] if f"v{i}" in archive else None,
            )
        return cls(meta["n_rows"], columns, tuple(meta["skipped"]), meta["created_at"], meta["label"])


def summarize(
    source: Any,
    *,
    columns: list[str] | None = None,
    exact_limit: int = EXACT_LIMIT,
    chunk: int = DEFAULT_CHUNK,
    label: str = "",
) -> Summary:
    """Summarise a DataFrame, Arrow table or Parquet path, ``chunk`` columns at a time.

    Example::

        ref = summarize(train_df)                  # once, stored with the data set version
        report = compare(ref, current_df)
    """
    table = open_source(source)
    names = list(table.columns) if columns is None else list(columns)
    missing = [n for n in names if n not in table.kinds]
    if missing:
        raise InvalidInput(f"columns {missing} are not in the table", field="columns", value=missing,
                           hint=f"the table has {list(table.columns)}")
    usable = [n for n in names if table.kinds[n] is not None]
    skipped = tuple(n for n in names if table.kinds[n] is None)
    out: dict[str, ColumnSummary] = {}
    for part in table.iter_chunks(usable, chunk):
        out.update(_summarize_chunk(part, table.n_rows, exact_limit))
    return Summary(table.n_rows, {n: out[n] for n in usable}, skipped, label=label)


def _summarize_chunk(part: ColumnChunk, n_rows: int, exact_limit: int) -> dict[str, ColumnSummary]:
    out = _numeric(part.numeric_names, part.numeric, exact_limit) if part.numeric_names else {}
    for name, column in part.categorical.items():
        out[name] = _categorical(name, column, n_rows)
    return out


def _numeric(names: tuple[str, ...], matrix: Any, exact_limit: int) -> dict[str, ColumnSummary]:
    """Summaries of the columns of ``matrix``, two columns at a time (NumPy releases the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(j: int) -> ColumnSummary:
        return _numeric_column(names[j], matrix[:, j], exact_limit)

    if len(names) < 2 or matrix.shape[0] < 50_000:
        return {names[j]: one(j) for j in range(len(names))}
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(names, pool.map(one, range(len(names)))))


def _numeric_column(name: str, column: Any, exact_limit: int) -> ColumnSummary:
    import numpy as np

    n = len(column)
    missing = ~np.isfinite(column)  # ±inf count as missing, as Evidently treats them
    n_missing = int(missing.sum())
    x = column[~missing] if n_missing else column
    nv = len(x)
    if nv == 0:
        return ColumnSummary(name, NUMERIC, n, n_missing)
    if nv <= exact_limit:
        x = np.sort(x)
        quantiles, values = _sorted_quantiles(x), x
        unique = int(np.count_nonzero(x[1:] != x[:-1])) + 1
    else:
        quantiles, unique = _histogram_quantiles(x)
        values = None
    counts = None
    if unique <= FEW_VALUES:
        vals, cnt = np.unique(x, return_counts=True)
        unique = len(vals)
        counts = {_key(v): int(c) for v, c in zip(vals.tolist(), cnt.tolist())}
    return ColumnSummary(
        name, NUMERIC, n, n_missing, unique, float(quantiles[0]), float(quantiles[-1]),
        float(x.mean()), float(x.std()), quantiles, values, counts,
    )


def _sorted_quantiles(x: Any) -> Any:
    """NumPy's default ('linear') quantiles of sorted ``x`` at every sketch level."""
    import numpy as np

    pos = levels() * (len(x) - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, len(x) - 1)
    return x[lo] * (1 - (pos - lo)) + x[hi] * (pos - lo)


#: Cells of the histogram that locates order statistics without sorting a whole column.
CELLS = 1 << 16


def _histogram_quantiles(x: Any) -> tuple[Any, int]:
    """The same quantiles as ``_sorted_quantiles(np.sort(x))``, exactly, in O(n).

    A 65,536-cell histogram over [min, max] finds the cell of every wanted order statistic;
    only the values in those cells are sorted. Also returns the number of non-empty cells:
    the number of distinct values when it is small, a lower bound otherwise.
    """
    import numpy as np

    lo_v, hi_v = float(x.min()), float(x.max())
    if lo_v == hi_v:
        return np.full(QUANTILE_LEVELS, lo_v), 1
    cell = ((x - lo_v) * (CELLS / (hi_v - lo_v))).astype(np.int64)
    np.minimum(cell, CELLS - 1, out=cell)
    counts = np.bincount(cell, minlength=CELLS)
    ends = np.cumsum(counts)
    pos = levels() * (len(x) - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, len(x) - 1)
    ranks = np.concatenate([lo, hi])
    cells_of = np.searchsorted(ends, ranks, side="right")
    needed = np.unique(cells_of)
    chosen = np.isin(cell, needed, kind="table")
    picked = np.sort(x[chosen])
    before = np.zeros(CELLS, dtype=np.int64)  # picked values in needed cells left of each cell
    before[needed] = np.cumsum(counts[needed]) - counts[needed]
    starts = ends - counts
    at = picked[before[cells_of] + ranks - starts[cells_of]]
    a, b = at[: len(lo)], at[len(lo):]
    return a * (1 - (pos - lo)) + b * (pos - lo), int(np.count_nonzero(counts))


def _categorical(name: str, column: Any, n_rows: int) -> ColumnSummary:
    import pyarrow.compute as pc

    pairs: list[tuple[str, int]] = []
    if hasattr(column, "value_counts") and hasattr(column, "isna"):  # a pandas Series
        n_missing = int(column.isna().sum())
        counted = column.value_counts(dropna=True, sort=True)
        pairs = [(_category(k), int(c)) for k, c in zip(counted.index.tolist(), counted.tolist())]
    elif n_rows - (n_missing := column.null_count) > 0:
        counted = pc.value_counts(column)
        keys = counted.field("values").to_pylist()
        freqs = counted.field("counts").to_pylist()
        pairs = sorted(((_category(k), int(c)) for k, c in zip(keys, freqs) if k is not None), key=lambda p: -p[1])
    kept = dict(pairs[:MAX_CATEGORIES])
    other = sum(c for _, c in pairs[MAX_CATEGORIES:])
    return ColumnSummary(name, CATEGORICAL, n_rows, n_missing, len(pairs), counts=kept, other_count=other)


def _category(value: Any) -> str:
    return str(value)


def _key(value: float) -> str:
    # integral floats print as "3", so numeric codes match across int and float columns
    return str(int(value)) if float(value).is_integer() else repr(float(value))


