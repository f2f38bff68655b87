"""Signatures inferred from an input example and the model's output on it."""

from __future__ import annotations

from typing import Any

from conveyor.entities import ColumnSpec, Signature
from conveyor.errors import InvalidInput


def dtype_name(dtype: Any, sample: Any = None) -> str:
    """The signature dtype (see ``conveyor.entities.DTYPES``) of a numpy/pandas dtype.

    ``sample`` (a few values) decides between "string" and "bytes" for object columns.
    """
    import numpy as np

    numpy_dtype = getattr(dtype, "numpy_dtype", dtype)  # pandas nullable Int64/Float64/boolean
    try:
        kind = np.dtype(numpy_dtype).kind
    except TypeError:  # pandas str / category / arrow dtypes without a numpy equivalent
        kind = "O"
    if kind == "b":
        return "bool"
    if kind in "iuf":
        return np.dtype(numpy_dtype).name
    if kind == "M":
        return "datetime"
    if kind == "S":
        return "bytes"
    if sample is not None:
        for value in sample:
            if isinstance(value, bytes):
                return "bytes"
            if isinstance(value, str):
                return "string"
    return "string"


def _has_missing(values: Any) -> bool:
    import pandas as pd

    return bool(pd.isna(values).any())


def _frame_inputs(frame: Any) -> tuple[ColumnSpec, ...]:
    specs = []
    for name in frame.columns:
        column = frame[name]
        if not isinstance(name, str):
            raise InvalidInput(
                f"input example column {name!r} is not a string",
                field="input_example",
                value=name,
                hint="give the DataFrame string column names",
            )
        specs.append(ColumnSpec(name, dtype_name(column.dtype, column.head(20)), (), _has_missing(column)))
    return tuple(specs)


def _array_inputs(array: Any) -> tuple[ColumnSpec, ...]:
    import numpy as np

    name = dtype_name(array.dtype, array.ravel()[:20])
    nullable = bool(array.dtype.kind == "f" and np.isnan(array).any())
    if array.ndim == 1:
        return (ColumnSpec("input_0", name, (), nullable),)
    if array.ndim == 2:
        missing = np.isnan(array).any(axis=0) if array.dtype.kind == "f" else [False] * array.shape[1]
        return tuple(ColumnSpec(f"input_{i}", name, (), bool(missing[i])) for i in range(array.shape[1]))
    # images, sequences…: one tensor column whose value per row has this shape
    return (ColumnSpec("input", name, tuple(int(d) for d in array.shape[1:]), nullable),)


def example_frame_or_array(example: Any) -> Any:
    """An input example as a DataFrame (tables, list of dicts) or an ndarray (tensors)."""
    import numpy as np
    import pandas as pd

    if isinstance(example, pd.DataFrame):
        return example
    if isinstance(example, np.ndarray):
        return example
    if isinstance(example, dict):
        return pd.DataFrame({k: np.atleast_1d(v) for k, v in example.items()})
    if isinstance(example, list) and example and all(isinstance(r, dict) for r in example):
        return pd.DataFrame.from_records(example)
    if isinstance(example, list):
        return np.asarray(example)
    raise InvalidInput(
        f"cannot use a {type(example).__name__} as an input example",
        field="input_example",
        value=type(example).__name__,
        hint="pass a pandas DataFrame, a numpy array, a dict of columns or a list of dicts",
    )


def infer_signature(input_example: Any, output: Any = None) -> Signature:
    """Infer a signature from an input example and (optionally) the model's output on it.

    DataFrame columns keep their names and dtypes; a 2-D array becomes columns
    ``input_0..input_{k-1}``; a higher-dimensional array becomes one tensor column ``input``
    with the per-row shape. A column is nullable when the example holds a missing value.

    Example::

        >>> import numpy as np
        >>> infer_signature(np.zeros((2, 3))).input_names
        ['input_0', 'input_1', 'input_2']
    """
    import numpy as np

    data = example_frame_or_array(input_example)
    inputs = _array_inputs(data) if isinstance(data, np.ndarray) else _frame_inputs(data)
    return Signature(inputs, infer_outputs(output))


_PROBED_COLUMNS = 64  # beyond this, columns one by one would cost too many predicts


def probe_nullable(predict: Any, example: Any, inputs: tuple[ColumnSpec, ...]) -> tuple[ColumnSpec, ...]:
    """Mark a float or string column nullable when the model predicts on rows missing it.

    An input example rarely holds a missing value in every column the model copes with
    (a pipeline with an imputer, a tree ensemble that routes NaN): inferred from the
    example alone, serving would refuse NaN the model handles. So each float/string
    column not already nullable is probed: the example's first row with that column set
    to NaN/None must predict without an error and with finite numeric output (a network
    that propagates NaN is not nullable). All columns are tried in one batch first; when
    that fails, each column alone (at most 64). ``predict`` is the flavor's native predict.
    """
    import warnings

    import numpy as np
    import pandas as pd

    if not isinstance(example, pd.DataFrame) or example.empty:
        return inputs
    candidates = [
        s.name for s in inputs
        if not s.nullable and s.shape == () and (s.dtype.startswith("float") or s.dtype == "string")
    ]
    if not candidates:
        return inputs

    def survives(columns: list[str]) -> bool:
        rows = []
        for name in columns:
            row = example.head(1).copy()
            if str(row[name].dtype).startswith("float"):
                row[name] = np.nan
            else:
                row[name] = pd.Series([None], index=row.index, dtype=object)
            rows.append(row)
        probe = pd.concat(rows, ignore_index=True)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                output = np.asarray(predict(probe))
        except Exception:  # noqa: BLE001 - any failure means: the model does not take a missing value here
            return False
        return output.dtype.kind not in "fc" or bool(np.isfinite(output).all())

    if survives(candidates):
        nullable = set(candidates)
    else:
        nullable = {c for c in candidates[:_PROBED_COLUMNS] if survives([c])} if len(candidates) > 1 else set()
    return tuple(ColumnSpec(s.name, s.dtype, s.shape, True) if s.name in nullable else s for s in inputs)


def infer_outputs(output: Any) -> tuple[ColumnSpec, ...]:
    """Output specs of a model's prediction (``prediction``, with a per-row shape if needed)."""
    import numpy as np
    import pandas as pd

    if output is None:
        return ()
    if isinstance(output, pd.DataFrame):
        return _frame_inputs(output)
    if isinstance(output, pd.Series):
        output = output.to_numpy()
    array = np.asarray(output)
    if array.ndim == 0:
        return (ColumnSpec("prediction", dtype_name(array.dtype)),)
    sample = array.ravel()[:20]
    shape = tuple(int(d) for d in array.shape[1:])
    if shape == (1,):
        shape = ()
    return (ColumnSpec("prediction", dtype_name(array.dtype, sample), shape),)


#: the name of the probability output (``predict_proba``) in signatures and serving
PROBABILITIES = "probabilities"


def json_labels(classes: Any) -> tuple[Any, ...]:
    """Class labels as JSON values (numpy scalars unwrapped); refuses other objects."""
    import numpy as np

    values = np.asarray(classes).reshape(-1).tolist()
    for value in values:
        if not isinstance(value, (int, float, str, bool)):
            raise InvalidInput(
                f"class label {value!r} cannot be stored as JSON", field="classes_", value=repr(value),
                hint="train on int, float, bool or string labels",
            )
    return tuple(values)


def infer_probabilities(proba: Any, classes: Any) -> ColumnSpec:
    """The probability output spec: float64, one value per class, each class labelled.

    Example::

        >>> infer_probabilities([[0.2, 0.8]], ["no", "yes"]).to_dict()["classes"]
        ['no', 'yes']
    """
    import numpy as np

    array = np.asarray(proba)
    labels = json_labels(classes)
    if array.ndim != 2 or array.shape[1] != len(labels):
        raise InvalidInput(
            f"predict_proba returned shape {list(array.shape)} for {len(labels)} classes", field="predict_proba",
            value=list(array.shape), hint="predict_proba must answer one column per class",
        )
    return ColumnSpec(PROBABILITIES, "float64", (len(labels),), False, labels)
