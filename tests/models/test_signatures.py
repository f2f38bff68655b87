"""Signatures: inferred from examples, enforced on every predict."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from conveyor.entities import ColumnSpec, Signature
from conveyor.errors import InvalidInput
from conveyor.models import Validator, infer_signature

SIG = Signature(
    (
        ColumnSpec("age", "int64"),
        ColumnSpec("income", "float64", nullable=True),
        ColumnSpec("city", "string"),
    )
)
FLOATS = Signature((ColumnSpec("a", "float64"), ColumnSpec("b", "float64"), ColumnSpec("c", "float32")))


def test_infer_from_frame_keeps_names_dtypes_and_nulls() -> None:
    frame = pd.DataFrame({"age": [1, 2], "income": [1.5, np.nan], "city": ["a", "b"], "ok": [True, False]})
    sig = infer_signature(frame, np.array([0, 1]))
    assert [(c.name, c.dtype, c.nullable) for c in sig.inputs] == [
        ("age", "int64", False),
        ("income", "float64", True),
        ("city", "string", False),
        ("ok", "bool", False),
    ]
    assert sig.outputs == (ColumnSpec("prediction", "int64"),)


@pytest.mark.parametrize(
    ("example", "names", "shape"),
    [
        (np.zeros((3, 2), dtype="float32"), ["input_0", "input_1"], ()),
        (np.zeros((3, 28, 28)), ["input"], (28, 28)),
        ([{"x": 1.0, "y": 2}], ["x", "y"], ()),
    ],
)
def test_infer_from_arrays_and_records(example: Any, names: list[str], shape: tuple[int, ...]) -> None:
    sig = infer_signature(example)
    assert sig.input_names == names
    assert sig.inputs[0].shape == shape


def test_probabilities_output_keeps_its_width() -> None:
    sig = infer_signature(np.zeros((2, 3)), np.zeros((2, 4)))
    assert sig.outputs == (ColumnSpec("prediction", "float64", (4,)),)


def test_the_three_input_forms_give_the_same_columns() -> None:
    check = Validator(SIG)
    frame = pd.DataFrame({"age": [40], "income": [1.0], "city": ["Lyon"]})
    records = [{"age": 40, "income": 1.0, "city": "Lyon"}]
    array = np.array([[40, 1.0, "Lyon"]], dtype=object)
    for data in (frame, records, array):
        columns = check(data).to_columns()
        assert columns["age"].dtype == np.int64 and columns["age"][0] == 40
        assert columns["city"][0] == "Lyon"


@pytest.mark.parametrize(
    ("row", "named"),
    [
        ({"age": 40, "income": 1.0}, ["city"]),  # missing
        ({"age": 40, "income": 1.0, "city": "x", "zip": 1}, ["zip"]),  # extra
        ({"age": 40, "city": "x", "zip": 1}, ["income", "zip"]),  # both
    ],
)
def test_missing_and_extra_columns_are_named(row: dict[str, Any], named: list[str]) -> None:
    with pytest.raises(InvalidInput) as info:
        Validator(SIG)([row])
    for name in named:
        assert repr(name) in str(info.value)
    assert "age" in str(info.value)  # the hint lists the expected columns


def test_missing_and_extra_columns_in_a_frame() -> None:
    frame = pd.DataFrame({"age": [1], "city": ["x"], "extra": [0.0]})
    with pytest.raises(InvalidInput, match="missing column.*'income'.*unexpected column.*'extra'"):
        Validator(SIG)(frame)


@pytest.mark.parametrize(
    ("row", "column"),
    [
        ({"age": 40.5, "income": 1.0, "city": "x"}, "age"),  # float → int is lossy
        ({"age": "forty", "income": 1.0, "city": "x"}, "age"),
        ({"age": 40, "income": "rich", "city": "x"}, "income"),
        ({"age": 40, "income": 1.0, "city": 7}, "city"),
    ],
)
def test_mistyped_columns_are_named(row: dict[str, Any], column: str) -> None:
    with pytest.raises(InvalidInput) as info:
        Validator(SIG)([row])
    assert info.value.field == column
    assert repr(column) in str(info.value)


def test_safe_casts_are_applied() -> None:
    batch = Validator(FLOATS)([{"a": 1, "b": True, "c": 2.5}])  # int→float, bool→float, f64→f32
    assert batch.to_columns()["a"].dtype == np.float64
    frame = pd.DataFrame({"a": np.array([1], dtype="int32"), "b": [2.0], "c": [3.0]})
    assert Validator(FLOATS)(frame).to_columns()["c"].dtype == np.float32


def test_int_overflow_is_refused() -> None:
    sig = Signature((ColumnSpec("n", "int8"),))
    with pytest.raises(InvalidInput, match="'n'.*int8"):
        Validator(sig)([{"n": 300}])


@pytest.mark.parametrize(
    "data",
    [
        [{"age": 40, "income": None, "city": None}],
        pd.DataFrame({"age": [40], "income": [1.0], "city": [None]}),
    ],
)
def test_nulls_only_where_nullable(data: Any) -> None:
    with pytest.raises(InvalidInput, match="non-nullable column.*'city'"):
        Validator(SIG)(data)


def test_nan_in_matrix_names_the_column() -> None:
    with pytest.raises(InvalidInput, match="'b'"):
        Validator(Signature((ColumnSpec("a", "float64"), ColumnSpec("b", "float64"))))(np.array([[1.0, np.nan]]))
    ok = Validator(Signature((ColumnSpec("a", "float64"), ColumnSpec("b", "float64", nullable=True))))
    assert np.isnan(ok(np.array([[1.0, np.nan]])).to_numpy()[0, 1])


def test_row_lacking_a_key_is_a_null() -> None:
    sig = Signature((ColumnSpec("a", "float64"), ColumnSpec("b", "float64")))
    with pytest.raises(InvalidInput, match="'b'"):
        Validator(sig)([{"a": 1.0, "b": 2.0}, {"a": 1.0}])


def test_array_with_wrong_width_says_the_expected_columns() -> None:
    with pytest.raises(InvalidInput, match="3 columns .*a, b, c"):
        Validator(FLOATS)(np.zeros((1, 2)))


def test_tensor_shape_is_checked() -> None:
    sig = Signature((ColumnSpec("image", "float32", (2, 2)),))
    assert Validator(sig)(np.zeros((3, 2, 2))).to_numpy().shape == (3, 2, 2)
    assert Validator(sig)([{"image": [[0, 1], [2, 3]]}]).to_numpy().dtype == np.float32
    with pytest.raises(InvalidInput, match=r"shape \[2, 2\].*\[3, 3\]"):
        Validator(sig)(np.zeros((1, 3, 3)))


def test_one_row_numeric_fast_path_builds_no_frame() -> None:
    batch = Validator(FLOATS)([{"a": 1.0, "b": 2.0, "c": 3}])
    assert batch.matrix is None or batch.matrix.shape == (1, 3)
    assert batch.to_numpy().tolist() == [[1.0, 2.0, 3.0]]


def test_unsupported_input_type() -> None:
    with pytest.raises(InvalidInput, match="cannot predict on a str"):
        Validator(SIG)("age=4")
