"""Check request values against a model's signature and turn them into column arrays;
turn predictions back into named output arrays.

Errors name the column, the dtype or the shape (422), so a client can fix its request.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from conveyor.entities import ColumnSpec, Signature
from conveyor.serving._errors import unprocessable

Columns = Mapping[str, np.ndarray]


class MatrixColumns(Mapping[str, np.ndarray]):
    """Columns that are the columns of one 2-D float matrix (the fast path): the matrix
    goes to the model as is, and column views are made only when asked (for the log)."""

    __slots__ = ("matrix", "names")

    def __init__(self, matrix: np.ndarray, names: Sequence[str]) -> None:
        self.matrix = matrix
        self.names = list(names)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.matrix[:, self.names.index(name)]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

#: signature dtype → Open Inference Protocol datatype
OIP_DATATYPE = {
    "bool": "BOOL", "int8": "INT8", "int16": "INT16", "int32": "INT32", "int64": "INT64",
    "uint8": "UINT8", "uint16": "UINT16", "uint32": "UINT32", "uint64": "UINT64",
    "float16": "FP16", "float32": "FP32", "float64": "FP64",
    "string": "BYTES", "bytes": "BYTES", "datetime": "BYTES",
}
#: OIP datatype → the signature dtypes it may carry
OIP_ACCEPTS = {
    "BOOL": {"bool"}, "BYTES": {"string", "bytes", "datetime"},
    **{t: {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "float32", "float64"}
       for t in ("INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64", "FP16", "FP32", "FP64")},
}


def _first_bad(values: Any, ok: Any) -> tuple[int, Any]:
    for i, v in enumerate(np.asarray(values, dtype=object).reshape(-1)):
        if not ok(v):
            return i, v
    return -1, None


def _number(v: Any) -> bool:
    return v is None or (isinstance(v, (int, float, np.number)) and not isinstance(v, bool))


def cast_column(name: str, values: Any, spec: ColumnSpec | None) -> np.ndarray:
    """``values`` (a list, nested list or array; one entry per row) as an array of the
    signature's dtype and shape; 422 naming the column otherwise.

    Example::

        >>> cast_column("age", [31, 40], ColumnSpec("age", "float64")).tolist()
        [31.0, 40.0]
    """
    if spec is None:
        try:
            arr = np.asarray(values)
        except (ValueError, TypeError, OverflowError) as exc:
            raise unprocessable(f"column {name!r}: {exc}") from None
        if arr.dtype.kind in "fc":
            _check_finite(name, arr)
        return arr
    dtype = spec.dtype
    try:
        if dtype.startswith(("float", "int", "uint")):
            arr = _numeric(name, values, spec)
        elif dtype == "bool":
            arr = np.asarray(values)
            if arr.dtype != np.bool_:
                i, v = _first_bad(values, lambda x: isinstance(x, (bool, np.bool_)) or (x is None and spec.nullable))
                raise unprocessable(f"column {name!r} expects bool, got {v!r} at row {max(i, 0)}")
        elif dtype == "datetime":
            arr = np.asarray(values, dtype="datetime64[ns]")
        else:  # string, bytes
            i, v = _first_bad(values, lambda x: isinstance(x, (str, bytes)) or (x is None and spec.nullable))
            if i >= 0:
                raise unprocessable(f"column {name!r} expects {dtype}, got {v!r} at row {i}")
            arr = np.asarray(values, dtype=object)
    except (ValueError, TypeError) as exc:
        raise unprocessable(f"column {name!r} expects {dtype}: {exc}") from None
    _check_shape(name, arr, spec)
    return arr


def _numeric(name: str, values: Any, spec: ColumnSpec) -> np.ndarray:
    raw = values if isinstance(values, np.ndarray) and values.dtype.kind in "iufb" else None
    if raw is None:
        try:
            raw = np.asarray(values, dtype=np.float64)
        except OverflowError:  # an integer beyond float64 (only Python's parser makes them)
            i, v = _first_bad(values, lambda x: not isinstance(x, int) or abs(x) < 2**1023)
            raise unprocessable(f"column {name!r} expects {spec.dtype}, got a number too large at row {max(i, 0)}"
                                ) from None
        except (ValueError, TypeError):
            i, v = _first_bad(values, _number)
            where = f" at row {i}" if i >= 0 else " (rows of unequal length?)"
            raise unprocessable(f"column {name!r} expects {spec.dtype}, got {v!r}{where}") from None
    if raw.dtype.kind in "fc":
        _check_finite(name, raw)
        missing = np.isnan(raw)
        if missing.any():
            if not spec.nullable:
                row = int(np.argwhere(missing)[0][0])
                raise unprocessable(
                    f"column {name!r} has a missing value (NaN/null) at row {row}, "
                    "and the signature does not allow missing values there"
                )
            if spec.dtype.startswith(("int", "uint")):
                return raw  # nullable ints travel as float with NaN, as in pandas
    elif raw.dtype.kind not in "iub":
        raise unprocessable(f"column {name!r} expects {spec.dtype}, got {raw.dtype} values")
    if raw.dtype.kind == "b":
        raise unprocessable(f"column {name!r} expects {spec.dtype}, got booleans")
    target = np.dtype(spec.dtype)
    if target.kind in "iu":
        if raw.dtype.kind == "f" and not np.all(np.mod(raw, 1) == 0):
            raise unprocessable(f"column {name!r} expects {spec.dtype}, got fractional values")
        info = np.iinfo(target)
        if raw.size and (raw.min() < info.min or raw.max() > info.max):
            raise unprocessable(f"column {name!r}: values outside the range of {spec.dtype}")
    return raw.astype(target, copy=False)


def _check_finite(name: str, arr: np.ndarray) -> None:
    """422 at the first infinity (JSON ``Infinity``, CSV ``inf`` or ``1e999``): no model takes one."""
    infinite = np.isinf(arr)
    if infinite.any():
        row = int(np.argwhere(infinite)[0][0]) if arr.ndim else 0
        raise unprocessable(f"column {name!r} has an infinite value at row {row}; send finite numbers "
                            "(or null for a missing value where the signature allows it)")


def _check_shape(name: str, arr: np.ndarray, spec: ColumnSpec) -> None:
    want = tuple(spec.shape)
    got = arr.shape[1:]
    if arr.ndim == 0:
        raise unprocessable(f"column {name!r} must hold one value per row, got a scalar")
    if len(got) != len(want) or any(w not in (-1, g) for w, g in zip(want, got, strict=False)):
        raise unprocessable(
            f"column {name!r}: each row must have shape {list(want)}, got {list(got)}"
        )


def check_names(given: Sequence[str], signature: Signature | None) -> None:
    """422 naming missing and unexpected columns."""
    if signature is None or not signature.inputs:
        return
    wanted = signature.input_names
    missing = [n for n in wanted if n not in given]
    extra = [n for n in given if n not in wanted]
    parts = []
    if missing:
        parts.append("missing column(s) " + _some(missing))
    if extra:
        parts.append("unexpected column(s) " + _some(extra))
    if parts:
        raise unprocessable("; ".join(parts) + f"; the model takes {len(wanted)} columns: " + _some(wanted))


def _some(names: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" … ({len(names) - limit} more)" if len(names) > limit else "")


def columns_from_mapping(data: dict[str, Any], signature: Signature | None) -> tuple[Columns, int]:
    """Named columns (one list per column) → checked arrays and the row count."""
    check_names(list(data), signature)
    specs = {c.name: c for c in signature.inputs} if signature and signature.inputs else {}
    order = signature.input_names if signature is not None and specs else list(data)
    cols = {n: cast_column(n, data[n], specs.get(n)) for n in order}
    rows = {len(a) for a in cols.values()}
    if len(rows) > 1:
        raise unprocessable(f"columns have different numbers of rows: {sorted(rows)}")
    return cols, rows.pop() if rows else 0


def _fast_matrix(names: Sequence[str], rows: Any, signature: Signature | None) -> tuple[Columns, int] | None:
    """The common case in one step: float columns in signature order, no missing values.
    Anything else (or any doubt) returns None and takes the per-column path, which names
    the exact problem."""
    if signature is None or not signature.inputs or list(names) != signature.input_names:
        return None
    dtype = signature.inputs[0].dtype
    if not dtype.startswith("float") or any(c.dtype != dtype or c.shape for c in signature.inputs):
        return None
    try:
        mat = np.asarray(rows, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        return None
    if mat.ndim != 2 or mat.shape[1] != len(names) or not np.isfinite(mat).all():
        return None
    return MatrixColumns(mat.astype(dtype, copy=False), names), len(mat)


def columns_from_rows(names: Sequence[str], rows: Sequence[Any], signature: Signature | None) -> tuple[Columns, int]:
    """Positional rows (lists) under ``names`` → checked column arrays."""
    fast = _fast_matrix(names, rows, signature)
    if fast is not None:
        return fast
    width = len(names)
    for i, row in enumerate(rows):
        if not isinstance(row, (list, tuple)) or len(row) != width:
            got = len(row) if isinstance(row, (list, tuple)) else type(row).__name__
            raise unprocessable(f"row {i} has {got} values, expected {width} ({list(names)})")
    check_names(list(names), signature)
    transposed = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return columns_from_mapping({n: list(v) for n, v in zip(names, transposed, strict=True)}, signature)


def columns_from_records(records: Sequence[Any], signature: Signature | None) -> tuple[Columns, int]:
    """``[{column: value}, …]`` → checked column arrays (a key missing in one record is a
    missing value there)."""
    if not records:
        raise unprocessable("no rows to predict")
    names: dict[str, None] = {}
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise unprocessable(f"record {i} is a {type(rec).__name__}, expected an object")
        names.update(dict.fromkeys(rec))
    return columns_from_mapping({n: [r.get(n) for r in records] for n in names}, signature)


def split_matrix(matrix: Any, signature: Signature | None, label: str) -> tuple[Columns, int]:
    """One 2-D tensor whose columns follow the signature order → column arrays."""
    names = signature.input_names if signature and signature.inputs else None
    try:
        arr = np.asarray(matrix)
    except (ValueError, OverflowError) as exc:
        raise unprocessable(f"{label}: ragged rows ({exc})") from None
    if names is None:
        return {label: arr}, (len(arr) if arr.ndim else 1)
    fast = _fast_matrix(names, arr, signature)
    if fast is not None:
        return fast
    if arr.ndim != 2 or arr.shape[1] != len(names):
        raise unprocessable(
            f"{label} has shape {list(arr.shape)}; expected [rows, {len(names)}] with columns {names}"
        )
    return columns_from_mapping({n: arr[:, i] for i, n in enumerate(names)}, signature)


def to_model_input(cols: Columns, signature: Signature | None) -> Any:
    """What ``Predictor.predict`` receives: a 2-D array when every column is a number of the
    same dtype in signature order, the array of a single tensor column, else a DataFrame."""
    if isinstance(cols, MatrixColumns):
        return cols.matrix
    arrays = list(cols.values())
    if len(arrays) == 1 and arrays[0].ndim > 1:
        return arrays[0]
    if (signature is not None and signature.inputs and list(cols) == signature.input_names
            and all(a.ndim == 1 and a.dtype == arrays[0].dtype and a.dtype.kind in "iuf" for a in arrays)):
        # Same-typed numeric columns in signature order: one matrix is what the protocol
        # allows and the cheapest thing for a model to check (no per-column frame work).
        return np.column_stack(arrays)
    import pandas as pd

    return pd.DataFrame(cols, copy=False)


def concat(parts: Sequence[Columns]) -> Columns:
    """Stack the columns of several requests (same model, same column order)."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    matrices = [p for p in parts if isinstance(p, MatrixColumns) and p.names == list(first)]
    if len(matrices) == len(parts):
        return MatrixColumns(np.concatenate([m.matrix for m in matrices]), matrices[0].names)
    return {n: np.concatenate([p[n] for p in parts]) for n in first}


def named_outputs(result: Any, signature: Signature | None, rows: int) -> Columns:
    """A model's answer as named arrays with ``rows`` rows each (500 if the count is off)."""
    from conveyor.serving._errors import HTTPError

    out_specs = list(signature.outputs) if signature else []
    if hasattr(result, "columns") and hasattr(result, "to_numpy"):  # a DataFrame
        outputs = {str(c): result[c].to_numpy() for c in result.columns}
    else:
        arr = np.asarray(result)
        if arr.ndim == 2 and len(out_specs) > 1 and arr.shape[1] == len(out_specs):
            outputs = {s.name: arr[:, i] for i, s in enumerate(out_specs)}
        else:
            outputs = {out_specs[0].name if len(out_specs) == 1 else "prediction": arr}
    for name, arr in outputs.items():
        if arr.ndim == 0 or len(arr) != rows:
            got = 1 if arr.ndim == 0 else len(arr)
            raise HTTPError(500, f"the model returned {got} rows in output {name!r} for {rows} input rows")
    return outputs


def oip_datatype(arr: np.ndarray) -> str:
    """OIP datatype of a numpy array."""
    kind = arr.dtype.kind
    if kind == "b":
        return "BOOL"
    if kind in "iuf":
        return OIP_DATATYPE.get(arr.dtype.name, "FP64")
    return "BYTES"


def jsonable(arr: np.ndarray) -> list[Any]:
    """Row values for JSON (NaN stays NaN only in floats; bytes decoded as UTF-8)."""
    if arr.dtype.kind in "OSU":
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in arr.tolist()]
    if arr.dtype.kind == "M":
        return [str(v) for v in arr.astype("datetime64[ms]").tolist()]
    values: list[Any] = arr.tolist()
    return values
