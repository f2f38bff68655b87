"""A deterministic step gives byte-identical scikit-learn outputs on every execution, so the
ML Test Score's reproducibility check (Infra 1: equal output digests of uncached executions)
can hold: skops names arrays and memo ids after memory addresses and dates the zip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def _models() -> list[object]:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return [make_pipeline(StandardScaler(), LogisticRegression()), RandomForestClassifier(8, random_state=0)]


@pytest.mark.parametrize("index", [0, 1])
def test_two_fits_save_to_identical_bytes_that_load_and_predict_the_same(tmp_path: Path, index: int,
                                                                        project: Path) -> None:
    import skops.io
    from sklearn.base import clone
    from sklearn.datasets import load_breast_cancer

    from conveyor.pipelines._materializers import SklearnMaterializer

    X, y = load_breast_cancer(return_X_y=True)
    template = _models()[index]
    first, second = clone(template).fit(X, y), clone(template).fit(X, y)
    # plain skops differs between two fits of the same model (addresses, timestamps)
    assert skops.io.dumps(first) != skops.io.dumps(second)
    saver = SklearnMaterializer()
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    saver.save(first, tmp_path / "a")
    saver.save(second, tmp_path / "b")
    assert (tmp_path / "a" / "model.skops").read_bytes() == (tmp_path / "b" / "model.skops").read_bytes()
    loaded = saver.load(tmp_path / "a")
    assert np.array_equal(loaded.predict(X), first.predict(X))
