"""Inferred signatures mark a column nullable when the model copes with it missing.

An input example without missing values must not make serving refuse NaN that the
model imputes or routes (issue 10: a ColumnTransformer + imputer pipeline, saved with
``input_example=features.head(3)``, refused NaN at ``ci check`` and at serving).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder

from conveyor.errors import InvalidInput
from conveyor.models import load, save


def _frame(n: int = 60) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "a": rng.normal(size=n),
        "b": rng.normal(size=n),
        "plan": rng.choice(["basic", "pro"], n),
    })
    return frame, (frame["a"] + frame["b"] > 0).astype(int).to_numpy()


def _nullable(model: Any, example: pd.DataFrame, folder: Path) -> dict[str, bool]:
    info = save(model, folder, input_example=example)
    assert info.signature is not None
    return {c.name: c.nullable for c in info.signature.inputs}


def test_a_pipeline_with_an_imputer_takes_nan_it_never_saw(tmp_path: Path) -> None:
    frame, y = _frame()
    numbers = frame[["a", "b"]]
    model = make_pipeline(SimpleImputer(), LogisticRegression()).fit(numbers, y)
    assert not numbers.head(3).isna().any().any()
    assert _nullable(model, numbers.head(3), tmp_path / "m") == {"a": True, "b": True}
    loaded = load(tmp_path / "m")
    served = loaded.predict(pd.DataFrame({"a": [np.nan, 1.0], "b": [0.5, np.nan]}))
    np.testing.assert_array_equal(served, model.predict(pd.DataFrame({"a": [np.nan, 1.0], "b": [0.5, np.nan]})))


def test_a_model_that_fails_on_nan_keeps_the_clear_refusal(tmp_path: Path) -> None:
    frame, y = _frame()
    numbers = frame[["a", "b"]]
    model = LogisticRegression().fit(numbers, y)
    assert _nullable(model, numbers.head(3), tmp_path / "m") == {"a": False, "b": False}
    with pytest.raises(InvalidInput, match="non-nullable column.*'b'"):
        load(tmp_path / "m").predict(pd.DataFrame({"a": [1.0], "b": [np.nan]}))


def test_only_the_imputed_column_becomes_nullable(tmp_path: Path) -> None:
    frame, y = _frame()
    numbers = frame[["a", "b"]]
    prep = ColumnTransformer([("a", SimpleImputer(), ["a"]), ("b", "passthrough", ["b"])])
    model = Pipeline([("prep", prep), ("model", LinearRegression())]).fit(numbers, y)
    assert _nullable(model, numbers.head(3), tmp_path / "m") == {"a": True, "b": False}


def test_tree_ensembles_that_route_nan_and_imputed_strings(tmp_path: Path) -> None:
    frame, y = _frame()
    prep = ColumnTransformer([
        ("num", "passthrough", ["a", "b"]),
        ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="none"),
                              OneHotEncoder(handle_unknown="ignore")), ["plan"]),
    ])
    model = Pipeline([("prep", prep), ("model", HistGradientBoostingClassifier(max_iter=10))]).fit(frame, y)
    assert _nullable(model, frame.head(3), tmp_path / "m") == {"a": True, "b": True, "plan": True}
    got = load(tmp_path / "m").predict(pd.DataFrame({"a": [np.nan], "b": [1.0], "plan": [None]}))
    assert got.shape == (1,)


def test_a_text_column_the_vectorizer_cannot_read_missing_stays_required(tmp_path: Path) -> None:
    texts = pd.DataFrame({"text": ["good fine", "bad awful", "great", "terrible"] * 5})
    model = Pipeline([("tfidf", ColumnTransformer([("w", TfidfVectorizer(), "text")])),
                      ("model", LogisticRegression())]).fit(texts, [1, 0, 1, 0] * 5)
    assert _nullable(model, texts.head(2), tmp_path / "m") == {"text": False}


def test_a_network_that_propagates_nan_is_not_nullable(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    frame, _ = _frame()
    numbers = frame[["a", "b"]].astype("float32")
    net = torch.nn.Linear(2, 1)
    assert _nullable(net, numbers.head(3), tmp_path / "m") == {"a": False, "b": False}
    assert load(tmp_path / "m").signature.outputs  # the example predicted: the probe ran
