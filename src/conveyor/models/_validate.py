"""Enforce a signature on predict input: DataFrame, ndarray (signature order) or list of dicts.

A ``Validator`` is compiled once per loaded model, so a one-row request costs a few
microseconds of numpy work and never builds a DataFrame unless the flavor asks for one.

Cast rules: bool→int→float and float64→float32 are accepted (JSON numbers arrive as
int64/float64); float→int, number↔string and anything→bool are rejected, as is an int
that does not fit the target int type. NaN/None in a column with ``nullable=False`` is
rejected. Every error names the offending columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from conveyor.entities import ColumnSpec, Signature
from conveyor.errors import InvalidInput


def _family(dtype: str) -> str:
    if dtype == "bool":
        return "bool"
    if dtype.startswith("uint"):
        return "int"
    for prefix in ("int", "float"):
        if dtype.startswith(prefix):
            return prefix
    return dtype  # string, bytes, datetime


def _bad(message: str, field: str, value: object, hint: str) -> InvalidInput:
    return InvalidInput(message, field=field, value=value, hint=hint)


@dataclass(slots=True)
class Batch:
    """Validated input: either one matrix (all columns scalar of one dtype), one tensor
    (a single shaped column) or a dict of 1-D columns, in signature order."""

    names: list[str]
    rows: int
    matrix: Any = None
    columns: dict[str, Any] | None = None

    def to_numpy(self, dtype: Any = None) -> Any:
        """The input as one array: (rows, columns) for tables, (rows, *shape) for a tensor."""
        import numpy as np

        if self.matrix is None:
            assert self.columns is not None
            self.matrix = np.column_stack([self.columns[n] for n in self.names])
        if dtype is not None and self.matrix.dtype != dtype:
            return self.matrix.astype(dtype)
        return self.matrix

    def to_columns(self) -> dict[str, Any]:
        """One 1-D (or shaped) array per input name."""
        if self.columns is None:
            if len(self.names) == 1:
                self.columns = {self.names[0]: self.matrix}
            else:
                self.columns = {n: self.matrix[:, i] for i, n in enumerate(self.names)}
        return self.columns

    def to_frame(self) -> Any:
        """A pandas DataFrame with the signature's column names (built on demand)."""
        import pandas as pd

        if self.columns is None and self.matrix is not None and self.matrix.ndim == 2:
            return pd.DataFrame(self.matrix, columns=self.names, copy=False)
        return pd.DataFrame(self.to_columns(), copy=False)


class Validator:
    """Checks and converts predict input against a signature (``None`` passes input through)."""

    def __init__(self, signature: Signature | None) -> None:
        import numpy as np

        self.signature = signature
        specs = signature.inputs if signature else ()
        self.specs: tuple[ColumnSpec, ...] = specs
        self.names = [c.name for c in specs]
        self.name_set = frozenset(self.names)
        self.tensor = len(specs) == 1 and specs[0].shape != ()
        dtypes = {c.dtype for c in specs}
        # one common numeric dtype and scalar columns: validate and keep as one matrix
        self.matrix_dtype = (
            np.dtype(next(iter(dtypes)))
            if len(dtypes) == 1 and _family(next(iter(dtypes))) in ("int", "float", "bool") and not self.tensor
            else None
        )
        self.not_null = [i for i, c in enumerate(specs) if not c.nullable]

    # -- entry ------------------------------------------------------------------------------------
    def __call__(self, data: Any) -> Batch:
        import numpy as np

        if self.signature is None or not self.specs:
            return self._unchecked(data)
        if isinstance(data, np.ndarray):
            return self._from_array(data)
        if isinstance(data, list):
            return self._from_records(data)
        if isinstance(data, dict):
            return self._from_records([data])
        import pandas as pd

        if isinstance(data, pd.DataFrame):
            return self._from_frame(data)
        raise _bad(
            f"cannot predict on a {type(data).__name__}",
            "data",
            type(data).__name__,
            "pass a pandas DataFrame, a numpy array (columns in signature order) or a list of dicts",
        )

    def _unchecked(self, data: Any) -> Batch:
        import numpy as np
        import pandas as pd

        if isinstance(data, list) and data and isinstance(data[0], dict):
            data = pd.DataFrame.from_records(data)
        if isinstance(data, pd.DataFrame):
            names = [str(c) for c in data.columns]
            return Batch(names, len(data), columns={n: data[c].to_numpy() for n, c in zip(names, data.columns)})
        array = np.asarray(data)
        names = [f"input_{i}" for i in range(array.shape[1])] if array.ndim == 2 else ["input"]
        return Batch(names, len(array), matrix=array)

    # -- ndarray -----------------------------------------------------------------------------------
    def _from_array(self, array: Any) -> Batch:
        if self.tensor:
            spec = self.specs[0]
            want = spec.shape
            got = tuple(array.shape[1:])
            if len(got) != len(want) or any(w not in (-1, g) for w, g in zip(want, got)):
                raise _bad(
                    f"input {spec.name!r} expects rows of shape {list(want)}, got {list(got)}",
                    spec.name,
                    list(got),
                    f"send an array of shape (rows, {', '.join(map(str, want))})",
                )
            column = self._column(spec, array)
            return Batch(self.names, len(array), matrix=column)
        if array.ndim == 1 and len(self.specs) > 1:
            array = array.reshape(1, -1)  # one row given flat
        if array.ndim == 1:
            array = array.reshape(-1, 1)
        if array.ndim != 2 or array.shape[1] != len(self.specs):
            raise _bad(
                f"expected an array with {len(self.specs)} columns ({', '.join(self.names)}), "
                f"got shape {list(array.shape)}",
                "data",
                list(array.shape),
                "pass columns in signature order, or a DataFrame / list of dicts with these names",
            )
        if self.matrix_dtype is not None:
            return Batch(self.names, len(array), matrix=self._matrix(array))
        return Batch(self.names, len(array), columns={s.name: self._column(s, array[:, i]) for i, s in enumerate(self.specs)})

    def _matrix(self, array: Any) -> Any:
        import numpy as np

        spec = self.specs[0]
        if not _castable(array.dtype, spec.dtype):
            # per column, so the error names the columns that are wrong
            for i, s in enumerate(self.specs):
                self._column(s, array[:, i])
        if array.dtype.kind in "iu" and _family(spec.dtype) == "int":
            _check_int_range([s.name for s in self.specs], array, spec.dtype)
        out = array.astype(self.matrix_dtype, copy=False)
        if out.dtype.kind == "f" and self.not_null:
            checked = out if len(self.not_null) == out.shape[1] else out[:, self.not_null]
            bad = np.isnan(checked).any(axis=0)
            if bad.any():
                _raise_nulls([self.names[i] for i, b in zip(self.not_null, bad) if b])
        return out

    # -- list of dicts ----------------------------------------------------------------------------
    def _from_records(self, records: Sequence[Any]) -> Batch:
        import numpy as np

        if not records:
            raise _bad("no rows to predict on", "data", [], "send at least one row")
        if not isinstance(records[0], dict):
            return self._from_array(np.asarray(records))
        self._check_keys(records)
        if self.matrix_dtype is not None:
            try:
                array = np.array([[r.get(n) for n in self.names] for r in records])
            except ValueError:  # ragged: a list where a scalar belongs
                array = np.empty(0, dtype=object)
            if array.dtype.kind in "biuf" and array.ndim == 2:
                return Batch(self.names, len(records), matrix=self._matrix(array))
        columns = {}
        for spec in self.specs:
            values = [r.get(spec.name) for r in records]
            columns[spec.name] = self._column(spec, _as_array(values, spec))
        if self.tensor:
            return Batch(self.names, len(records), matrix=columns[self.names[0]])
        return Batch(self.names, len(records), columns=columns)

    def _check_keys(self, records: Sequence[dict[str, Any]]) -> None:
        n = len(self.names)
        if all(len(r) == n for r in records) and all(k in self.name_set for k in records[0]):
            if len(records) == 1 or all(r.keys() == records[0].keys() for r in records):
                return
        present: set[str] = set()
        for r in records:
            present.update(map(str, r))
        self._check_names(present, all_rows=[set(r) for r in records])

    def _check_names(self, present: set[str], all_rows: list[set[str]] | None = None) -> None:
        missing = [n for n in self.names if n not in present]
        extra = sorted(present - self.name_set)
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing column(s) {', '.join(map(repr, missing))}")
            if extra:
                parts.append(f"unexpected column(s) {', '.join(map(repr, extra))}")
            raise _bad(
                f"input does not match the model signature: {'; '.join(parts)}",
                "columns",
                {"missing": missing, "extra": extra},
                f"send exactly these columns: {', '.join(self.names)}",
            )
        if all_rows:  # every column is somewhere, but some rows lack some keys: those are nulls
            for spec in self.specs:
                if not spec.nullable and any(spec.name not in r for r in all_rows):
                    _raise_nulls([spec.name])

    # -- DataFrame -----------------------------------------------------------------------------------
    def _from_frame(self, frame: Any) -> Batch:
        self._check_names({str(c) for c in frame.columns})
        columns = {s.name: self._column(s, _series_values(frame[s.name])) for s in self.specs}
        if self.matrix_dtype is not None:
            import numpy as np

            return Batch(self.names, len(frame), matrix=np.column_stack([columns[n] for n in self.names]))
        return Batch(self.names, len(frame), columns=columns)

    # -- one column -----------------------------------------------------------------------------
    def _column(self, spec: ColumnSpec, values: Any) -> Any:
        return convert_column(spec, values)


def _series_values(series: Any) -> Any:
    import numpy as np

    dtype = series.dtype
    numpy_dtype = getattr(dtype, "numpy_dtype", None)
    if numpy_dtype is not None and not isinstance(dtype, np.dtype):  # pandas nullable ints/floats
        if series.hasnans:
            return series.to_numpy(dtype="float64", na_value=np.nan)
        return series.to_numpy(dtype=numpy_dtype)
    return series.to_numpy()


def _as_array(values: list[Any], spec: ColumnSpec) -> Any:
    import numpy as np

    if spec.shape:
        try:
            return np.asarray(values)
        except ValueError:
            return np.asarray(values, dtype=object)
    if any(v is None for v in values) and _family(spec.dtype) in ("float", "int"):
        if all(v is None or isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            return np.array([np.nan if v is None else v for v in values], dtype="float64")
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return _tighten(array)


def _tighten(array: Any) -> Any:
    """An object array of Python scalars as the numpy dtype they share (ints → int64…)."""
    import numpy as np

    kinds = {type(v) for v in array}
    if kinds <= {bool, np.bool_}:
        return array.astype(bool)
    if kinds <= {int, np.int64, np.int32}:
        try:
            return array.astype("int64")
        except OverflowError:
            return array
    if kinds <= {int, float, np.int64, np.float64, np.float32}:
        return array.astype("float64")
    return array


def _castable(src: Any, target: str) -> bool:
    kind = src.kind
    family = _family(target)
    if family == "bool":
        return kind == "b"
    if family == "int":
        return kind in "biu"
    if family == "float":
        return kind in "biuf"
    if family == "datetime":
        return kind == "M"
    return kind in "OUS"


def _check_int_range(names: list[str], array: Any, target: str) -> None:
    import numpy as np

    info = np.iinfo(target)
    if array.size and (array.min() < info.min or array.max() > info.max):
        raise _bad(
            f"values of {', '.join(map(repr, names))} do not fit {target}",
            names[0],
            [int(array.min()), int(array.max())],
            f"send values between {info.min} and {info.max}",
        )


def _raise_nulls(names: list[str]) -> None:
    raise _bad(
        f"missing values (NaN/None) in non-nullable column(s) {', '.join(map(repr, names))}",
        names[0],
        None,
        "fill them before predicting, or log the model with a signature that marks them nullable=True",
    )


def convert_column(spec: ColumnSpec, values: Any) -> Any:
    """Check one column's values against its spec and return them in the spec's dtype."""
    import numpy as np

    family = _family(spec.dtype)
    kind = values.dtype.kind
    if kind == "O" and family in ("int", "float", "bool"):
        values = _tighten(values)
        kind = values.dtype.kind
    if kind == "O" and family == "datetime":
        values = _to_datetime(spec, values)
        kind = "M"
    if kind == "U" and family == "datetime":
        values = _to_datetime(spec, values)
        kind = "M"
    if not _castable(values.dtype, spec.dtype) or (family in ("string", "bytes") and kind == "O" and not _all_text(values, spec)):
        got = _describe(values)
        raise _bad(
            f"column {spec.name!r} expects {spec.dtype}, got {got}",
            spec.name,
            got,
            _cast_hint(spec.dtype, got),
        )
    if family == "int" and kind in "iu":
        _check_int_range([spec.name], values, spec.dtype)
    if family in ("int", "float", "bool"):
        values = values.astype(spec.dtype, copy=False)
        if not spec.nullable and family == "float" and np.isnan(values).any():
            _raise_nulls([spec.name])
    elif family == "datetime":
        if not spec.nullable and np.isnat(values).any():
            _raise_nulls([spec.name])
    elif not spec.nullable:
        if any(v is None or (isinstance(v, float) and v != v) for v in values.ravel()):
            _raise_nulls([spec.name])
    return values


def _all_text(values: Any, spec: ColumnSpec) -> bool:
    want = bytes if spec.dtype == "bytes" else str
    return all(isinstance(v, want) or v is None or (isinstance(v, float) and v != v) for v in values.ravel())


def _to_datetime(spec: ColumnSpec, values: Any) -> Any:
    import numpy as np

    try:
        return np.array(values, dtype="datetime64[ns]")
    except (ValueError, TypeError):
        got = _describe(values)
        raise _bad(
            f"column {spec.name!r} expects datetime, got {got}", spec.name, got, "send ISO 8601 timestamps"
        ) from None


def _describe(values: Any) -> str:
    kind = values.dtype.kind
    if kind == "O":
        types = sorted({type(v).__name__ for v in values.ravel()[:50]})
        return "/".join(types) or "object"
    if kind == "U":
        return "string"
    return str(values.dtype)


def _cast_hint(target: str, got: str) -> str:
    family = _family(target)
    if family == "int" and got.startswith("float"):
        return "float→int would lose data: round the values yourself, or log the model with a float column"
    return f"send {target} values (safe casts such as int→float are applied for you)"
