"""Profiles of tables: per-column type, nulls, range, quantiles and category sets.

Computed once when a table version is added and stored as JSON with it, so ``show``,
``diff`` and ``validate --against`` compare versions without reading the data again.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Final

from conveyor.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MAX_CATEGORIES", "QUANTILES", "TABLE_FORMATS", "coarse_type", "profile_frame", "read_table", "table_format"]

QUANTILES: Final = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
#: A string column with at most this many distinct values is a category column.
MAX_CATEGORIES: Final = 50
TABLE_FORMATS: Final = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def table_format(path: Path) -> str | None:
    """``csv``/``parquet`` from the file name, or None for other files."""
    return TABLE_FORMATS.get(path.suffix.lower())


def read_table(source: str | Path | BinaryIO, fmt: str) -> pd.DataFrame:
    """Read a CSV or Parquet table into pandas (pyarrow does the parsing)."""
    import pandas as pd

    try:
        if fmt == "parquet":
            return pd.read_parquet(source)
        return pd.read_csv(source, engine="pyarrow")
    except (ValueError, OSError) as exc:
        raise InvalidInput(
            f"cannot read the table {getattr(source, 'name', source)!s} as {fmt}: {exc}", field="path",
            value=str(getattr(source, "name", source)), hint="check the file is valid CSV/Parquet",
        ) from exc


def coarse_type(dtype: Any) -> str:
    """One of ``bool``, ``int``, ``float``, ``datetime``, ``string`` for a pandas dtype."""
    from pandas.api import types

    if types.is_bool_dtype(dtype):
        return "bool"
    if types.is_integer_dtype(dtype):
        return "int"
    if types.is_float_dtype(dtype):
        return "float"
    if types.is_datetime64_any_dtype(dtype):
        return "datetime"
    return "string"


def _num(value: Any) -> float | int | None:
    if value is None:
        return None
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value  # type: ignore[no-any-return]


def profile_frame(frame: pd.DataFrame) -> dict[str, Any]:
    """The profile of a DataFrame (JSON-ready).

    Example::

        >>> import pandas as pd
        >>> p = profile_frame(pd.DataFrame({"a": [1, 2, None]}))
        >>> p["rows"], p["columns"]["a"]["type"], p["columns"]["a"]["nulls"]
        (3, 'float', 1)
    """
    rows = len(frame)
    columns: dict[str, Any] = {}
    for name in frame.columns:
        series = frame[name]
        kind = coarse_type(series.dtype)
        nulls = int(series.isna().sum())
        col: dict[str, Any] = {
            "type": kind, "dtype": str(series.dtype), "nulls": nulls,
            "null_rate": round(nulls / rows, 6) if rows else 0.0,
        }
        values = series.dropna()
        col["distinct"] = int(values.nunique())
        if kind in ("int", "float") and len(values):
            numeric = values.astype("float64")
            col.update(
                min=_num(values.min()), max=_num(values.max()), mean=_num(numeric.mean()),
                std=_num(numeric.std()) if len(values) > 1 else 0.0,
                quantiles={str(q): _num(v) for q, v in zip(QUANTILES, numeric.quantile(list(QUANTILES)), strict=True)},
            )
        elif kind == "datetime" and len(values):
            col.update(min=str(values.min()), max=str(values.max()))
        elif kind in ("string", "bool") and len(values):
            counts = values.astype(str).value_counts()
            if kind == "bool" or len(counts) <= MAX_CATEGORIES:
                col["categories"] = sorted(counts.index.tolist())
            col["top"] = {str(k): int(v) for k, v in counts.head(10).items()}
        columns[str(name)] = col
    return {"rows": rows, "columns": columns}
