"""The probability output in a package's signature: name, dtype, width and class labels,
recorded at save for every classifier flavor with predict_proba (scikit-learn, XGBoost,
LightGBM), absent for regressors; read back from ``conveyor-model.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import conveyor.models
from conveyor.entities import ColumnSpec, Signature


def _wine() -> tuple[Any, Any]:
    from sklearn.datasets import load_wine

    data = load_wine(as_frame=True)
    return data.data, data.target


def _cancer_named() -> tuple[Any, Any]:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    return data.data, np.where(data.target == 1, "benign", "malignant")


def _models() -> list[Any]:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    cases = [
        pytest.param(lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)), _cancer_named,
                     ["benign", "malignant"], [], id="logreg-binary-strings"),
        pytest.param(lambda: RandomForestClassifier(n_estimators=10, random_state=0), _wine, [0, 1, 2],
                     ["sklearn.tree._tree.Tree"], id="forest-multiclass"),
    ]
    try:
        import xgboost

        cases.append(pytest.param(lambda: xgboost.XGBClassifier(n_estimators=10, max_depth=2), _wine, [0, 1, 2], [],
                                  id="xgboost-multiclass"))
    except ImportError:  # the xgboost extra is not installed
        pass
    try:
        import lightgbm

        cases.append(pytest.param(lambda: lightgbm.LGBMClassifier(n_estimators=10, verbose=-1), _cancer_named,
                                  ["benign", "malignant"], [], id="lightgbm-binary-strings"))
    except ImportError:
        pass
    return cases


@pytest.mark.parametrize(("make", "data", "classes", "trust"), _models())
def test_classifier_signature_records_probabilities(tmp_path: Path, make: Any, data: Any, classes: list[Any],
                                                    trust: list[str]) -> None:
    X, y = data()
    model = make().fit(X, y)
    info = conveyor.models.save(model, tmp_path / "m", input_example=X.iloc[:5])
    spec = info.signature.probabilities
    assert spec == ColumnSpec("probabilities", "float64", (len(classes),), False, tuple(classes))
    assert [c.name for c in info.signature.outputs] == ["prediction"]  # predict still answers labels
    stored = json.loads((tmp_path / "m" / "conveyor-model.json").read_text())["signature"]["probabilities"]
    assert stored == {"name": "probabilities", "dtype": "float64", "shape": [len(classes)], "nullable": False,
                      "classes": classes}
    loaded = conveyor.models.load(tmp_path / "m", trusted=trust)
    assert loaded.signature.probabilities == spec
    proba = np.asarray(loaded.predict_proba(X.iloc[:7]))
    assert proba.shape == (7, len(classes))
    # the labels are in the order of the columns: the most probable one is the prediction
    assert [classes[i] for i in proba.argmax(axis=1)] == list(np.asarray(loaded.predict(X.iloc[:7])).tolist())


def test_regressor_and_models_without_proba_record_none(tmp_path: Path) -> None:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge
    from sklearn.svm import SVC

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    info = conveyor.models.save(Ridge().fit(X, y), tmp_path / "r", input_example=X.iloc[:3])
    assert info.signature.probabilities is None
    assert "probabilities" not in json.loads((tmp_path / "r" / "conveyor-model.json").read_text())["signature"]
    Xw, yw = _wine()
    svc = conveyor.models.save(SVC().fit(Xw, yw), tmp_path / "s", input_example=Xw.iloc[:3])  # probability=False
    assert svc.signature.probabilities is None


def test_signature_round_trips_and_old_packages_read() -> None:
    sig = Signature((ColumnSpec("x", "float64"),), (ColumnSpec("prediction", "int64"),),
                    ColumnSpec("probabilities", "float64", (2,), classes=(0, 1)))
    assert Signature.from_dict(json.loads(json.dumps(sig.to_dict()))) == sig
    old = {"inputs": [{"name": "x", "dtype": "float64", "shape": [], "nullable": False}], "outputs": []}
    assert Signature.from_dict(old).probabilities is None


@pytest.mark.tensorflow
def test_keras_classifier_with_classes_records_probabilities_and_predicts_labels(tmp_path: Path) -> None:
    """A Keras model saved with ``classes=`` is a classifier: its signature records the
    probability output with the labels, predict answers labels, predict_proba probabilities
    (a softmax over three classes, and one sigmoid column for two)."""
    keras = pytest.importorskip("keras")
    from conveyor.errors import InvalidInput

    keras.utils.set_random_seed(0)
    X, y = _wine()
    x = ((X - X.mean()) / X.std()).to_numpy("float32")
    softmax = keras.Sequential([keras.Input((x.shape[1],)), keras.layers.Dense(3, activation="softmax")])
    softmax.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy")
    softmax.fit(x, y.to_numpy(), epochs=30, verbose=0)
    labels = ["barolo", "grignolino", "barbera"]
    info = conveyor.models.save(softmax, tmp_path / "soft", input_example=x[:4], classes=labels)
    assert info.signature.probabilities == ColumnSpec("probabilities", "float64", (3,), False, tuple(labels))
    assert info.signature.outputs[0].dtype == "string"
    loaded = conveyor.models.load(tmp_path / "soft")
    proba = np.asarray(loaded.predict_proba(x[:20]))
    assert proba.shape == (20, 3) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert list(loaded.predict(x[:20])) == [labels[i] for i in proba.argmax(axis=1)]
    assert np.mean(np.asarray(loaded.predict(x)) == np.asarray(labels)[y.to_numpy()]) > 0.9

    Xb, yb = _cancer_named()
    xb = ((Xb - Xb.mean()) / Xb.std()).to_numpy("float32")
    sigmoid = keras.Sequential([keras.Input((xb.shape[1],)), keras.layers.Dense(1, activation="sigmoid")])
    sigmoid.compile(optimizer=keras.optimizers.Adam(0.05), loss="binary_crossentropy")
    sigmoid.fit(xb, (yb == "malignant").astype("float32"), epochs=20, verbose=0)
    info = conveyor.models.save(sigmoid, tmp_path / "sig", input_example=xb[:4], classes=["benign", "malignant"])
    assert info.signature.probabilities.classes == ("benign", "malignant")
    binary = conveyor.models.load(tmp_path / "sig")
    p = np.asarray(binary.predict_proba(xb[:10]))
    assert p.shape == (10, 2) and np.allclose(p[:, 1], np.asarray(sigmoid(xb[:10])).ravel(), atol=1e-6)
    with pytest.raises(InvalidInput, match="classes names 3 labels for a model with 1 output column"):
        conveyor.models.save(sigmoid, tmp_path / "bad", input_example=xb[:4], classes=["a", "b", "c"])
    plain = conveyor.models.save(sigmoid, tmp_path / "plain", input_example=xb[:4])
    assert plain.signature.probabilities is None and not conveyor.models.load(tmp_path / "plain").has_proba
