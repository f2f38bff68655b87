"""scikit-learn → ONNX: same predictions and probabilities, same signature."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conveyor.entities import ColumnSpec, Signature
from conveyor.errors import InvalidInput
from conveyor.models import infer_signature, load, to_onnx


def test_converted_model_predicts_like_the_original(tmp_path: Path, table: Any, sk_classifier: Any) -> None:
    frame, _ = table
    sig = infer_signature(frame.iloc[:5])
    info = to_onnx(sk_classifier, sig, tmp_path / "onnx")
    assert info.flavor == "onnx" and info.signature == sig
    model = load(tmp_path / "onnx")
    np.testing.assert_array_equal(model.predict(frame), sk_classifier.predict(frame))
    np.testing.assert_allclose(model.predict_proba(frame), sk_classifier.predict_proba(frame), rtol=1e-6, atol=1e-9)
    one = frame.iloc[:1].to_dict(orient="records")
    assert model.predict(one).tolist() == sk_classifier.predict(frame.iloc[:1]).tolist()


def test_regressor_has_no_proba(tmp_path: Path, floats: np.ndarray) -> None:
    from sklearn.linear_model import Ridge

    x = floats.astype("float64")
    model = Ridge().fit(x, x.sum(axis=1))
    to_onnx(model, infer_signature(x), tmp_path / "onnx")
    loaded = load(tmp_path / "onnx")
    np.testing.assert_allclose(loaded.predict(x).ravel(), model.predict(x), rtol=1e-6)
    assert not loaded.has_proba
    with pytest.raises(InvalidInput, match="predict_proba"):
        loaded.predict_proba(x)


def test_non_numeric_columns_are_refused(tmp_path: Path, sk_classifier: Any) -> None:
    sig = Signature((ColumnSpec("city", "string"), ColumnSpec("age", "int64")))
    with pytest.raises(InvalidInput, match="city"):
        to_onnx(sk_classifier, sig, tmp_path / "onnx")
