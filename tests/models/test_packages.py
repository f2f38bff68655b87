"""save / log / load end to end: runs:/ URIs, the package file, bad objects and packages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import conveyor
import conveyor.models
from conveyor.errors import AlreadyExists, InvalidInput, NotFound
from conveyor.models import META_FILE, load, log, read_meta, save


def test_log_inside_a_run_and_load_by_run_uri(project: Path, table: Any, sk_classifier: Any) -> None:
    frame, _ = table
    with conveyor.start_run(experiment="models") as run:
        info = log(sk_classifier, "classifier", input_example=frame.iloc[:5], metadata={"owner": "ml"})
    assert info.uri == f"runs:/{run.id}/classifier"
    assert info.digest and info.digest.startswith("blake3:")
    loaded = load(info.uri)
    np.testing.assert_array_equal(loaded.predict(frame), sk_classifier.predict(frame))
    np.testing.assert_allclose(loaded.predict_proba(frame.iloc[:3]), sk_classifier.predict_proba(frame.iloc[:3]))
    assert loaded.flavor == "sklearn" and loaded.metadata["metadata"] == {"owner": "ml"}
    assert any(r.startswith("scikit-learn==") for r in loaded.requirements)
    assert list(loaded.example.columns) == list(frame.columns)


def test_log_needs_an_active_run(project: Path, sk_classifier: Any) -> None:
    with pytest.raises(InvalidInput, match="no active run"):
        log(sk_classifier)


def test_runs_uri_of_missing_artifact(project: Path, sk_classifier: Any) -> None:
    with conveyor.start_run() as run:
        pass
    with pytest.raises(NotFound):
        load(f"runs:/{run.id}/nothing")


def test_package_file_describes_the_model(tmp_path: Path, table: Any, sk_classifier: Any) -> None:
    frame, _ = table
    save(sk_classifier, tmp_path / "m", input_example=frame.iloc[:3])
    data = json.loads((tmp_path / "m" / META_FILE).read_text())
    assert data["format_version"] == 1 and data["flavor"] == "sklearn"
    assert data["flavor_config"]["file"] == "model.skops"
    assert data["signature"]["inputs"][0] == {"name": "mean_radius", "dtype": "float64", "shape": [], "nullable": False}
    assert data["input_example"] == "input_example.json"
    assert {r.split("==")[0] for r in data["requirements"]} >= {"numpy", "pandas", "scikit-learn", "skops"}
    assert data["conveyor_version"] == conveyor.__version__ and data["created_at"].endswith("Z")


def test_no_signature_means_no_checks(tmp_path: Path, sk_classifier: Any, table: Any) -> None:
    frame, _ = table
    save(sk_classifier, tmp_path / "m", signature=None)
    loaded = load(tmp_path / "m")
    assert loaded.signature is None
    np.testing.assert_array_equal(loaded.predict(frame.iloc[:4]), sk_classifier.predict(frame.iloc[:4]))


def test_predict_enforces_the_signature(tmp_path: Path, sk_classifier: Any, table: Any) -> None:
    frame, _ = table
    save(sk_classifier, tmp_path / "m", input_example=frame.iloc[:3])
    loaded = load(tmp_path / "m")
    row = frame.iloc[0].to_dict()
    del row["mean_area"]
    row["colour"] = "red"
    with pytest.raises(InvalidInput, match="'mean_area'.*'colour'"):
        loaded.predict([row])


def test_unknown_model_object_lists_the_flavors(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as info:
        save(object(), tmp_path / "m")
    for name in ("sklearn", "keras", "pytorch", "onnx", "pyfunc"):
        assert name in str(info.value)
    assert not (tmp_path / "m").exists()


def test_wrong_explicit_flavor(tmp_path: Path, sk_classifier: Any) -> None:
    with pytest.raises(InvalidInput, match="flavor 'onnx' cannot save"):
        save(sk_classifier, tmp_path / "m", flavor="onnx")
    with pytest.raises(NotFound, match="flavor 'xgb'"):
        save(sk_classifier, tmp_path / "m", flavor="xgb")


def test_save_refuses_a_non_empty_folder(tmp_path: Path, sk_classifier: Any) -> None:
    save(sk_classifier, tmp_path / "m")
    with pytest.raises(AlreadyExists):
        save(sk_classifier, tmp_path / "m")
    save(sk_classifier, tmp_path / "m", overwrite=True)


def test_load_of_a_folder_that_is_no_package(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotFound, match="model package"):
        load(tmp_path / "empty")


def test_future_format_version_is_refused(tmp_path: Path, sk_classifier: Any) -> None:
    save(sk_classifier, tmp_path / "m")
    path = tmp_path / "m" / META_FILE
    data = json.loads(path.read_text())
    data["format_version"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(InvalidInput, match="format_version 99"):
        read_meta(tmp_path / "m")


def test_pyfunc_refuses_state_it_cannot_store_without_pickle(tmp_path: Path) -> None:
    from model_helpers import Opaque

    with pytest.raises(InvalidInput, match="attribute 'helper'"):
        save(Opaque(), tmp_path / "m")


def test_pyfunc_refuses_classes_other_processes_cannot_import(tmp_path: Path) -> None:
    class Local:
        def predict(self, data: Any) -> Any:
            return data

    with pytest.raises(InvalidInput, match="importable module"):
        save(Local(), tmp_path / "m")


def test_models_uri_points_to_the_registry(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="registry"):
        load("models:/churn@champion")


def test_public_surface_is_pinned_and_sorted() -> None:
    exported = conveyor.models.__all__
    assert exported == sorted(exported)
    assert {"save", "load", "log", "load_from_store", "infer_signature", "to_onnx", "LoadedModel", "ModelInfo"} <= set(
        exported
    )
    for name in exported:
        assert getattr(conveyor.models, name) is not None


def test_loaded_models_are_predictors(tmp_path: Path, sk_classifier: Any, table: Any) -> None:
    from conveyor.entities import Predictor

    save(sk_classifier, tmp_path / "m", input_example=table[0].iloc[:2])
    loaded = load(tmp_path / "m")
    assert isinstance(loaded, Predictor)
    assert loaded.has_proba


def test_pyfunc_array_input_and_from_state(tmp_path: Path, floats: np.ndarray) -> None:
    from model_helpers import Threshold

    model = Threshold([1.0, 1.0, 1.0, 1.0], 2.0)
    save(model, tmp_path / "m", input_example=floats)
    loaded = load(tmp_path / "m", trusted=["model_helpers"])  # a module entry trusts its classes
    assert loaded.meta.flavor_config["accepts"] == "array"
    assert loaded.meta.flavor_config["arrays"] == "state.npz"  # the weights, not JSON
    np.testing.assert_array_equal(loaded.predict(floats), model.predict(floats))


def test_unknown_flavor_option_is_named(tmp_path: Path, sk_classifier: Any) -> None:
    with pytest.raises(InvalidInput, match="unknown option.*factory"):
        save(sk_classifier, tmp_path / "m", factory="x:y")


def test_sklearn_native_model_is_untouched(tmp_path: Path, sk_classifier: Any, table: Any) -> None:
    frame, _ = table
    save(sk_classifier, tmp_path / "m", input_example=frame.iloc[:5])
    loaded = load(tmp_path / "m")
    assert list(loaded.native.feature_names_in_) == list(frame.columns)  # the ndarray twin is a copy
    row = frame.iloc[:1].to_dict(orient="records")
    np.testing.assert_allclose(loaded.predict_proba(row), sk_classifier.predict_proba(frame.iloc[:1]))


def test_mixed_string_and_numeric_columns_end_to_end(tmp_path: Path) -> None:
    import pandas as pd
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame = pd.DataFrame({"city": ["a", "b", "a", "c"] * 5, "age": list(range(20)), "income": np.linspace(0, 1, 20)})
    target = (frame["age"] > 9).astype(int)
    model = make_pipeline(
        make_column_transformer((OneHotEncoder(handle_unknown="ignore"), ["city"]), remainder="passthrough"),
        LogisticRegression(),
    ).fit(frame, target)
    save(model, tmp_path / "m", input_example=frame.iloc[:3])
    loaded = load(tmp_path / "m")
    assert [c.dtype for c in loaded.signature.inputs] == ["string", "int64", "float64"]
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
    assert loaded.predict([{"city": "b", "age": 12, "income": 0.5}]).shape == (1,)
    with pytest.raises(InvalidInput, match="'age'"):
        loaded.predict([{"city": "b", "age": 12.5, "income": 0.5}])


def test_a_missing_framework_names_the_extra_to_install(tmp_path, monkeypatch):
    """Loading a package whose framework is not installed says which extra brings it."""
    import builtins

    from conveyor.errors import InvalidInput
    from conveyor.models._package import missing_framework

    error = missing_framework("an onnx model", ModuleNotFoundError("No module named 'onnxruntime'", name="onnxruntime"))
    assert isinstance(error, InvalidInput)
    assert "'onnxruntime'" in str(error) and "conveyor-mlops[onnx]" in str(error)

    real_import = builtins.__import__

    def no_skl2onnx(name, *args, **kwargs):
        if name.startswith("skl2onnx"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_skl2onnx)
    from sklearn.linear_model import LogisticRegression

    from conveyor.entities import ColumnSpec, Signature
    from conveyor.models import to_onnx

    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    with pytest.raises(InvalidInput, match=r"conveyor-mlops\[onnx\]"):
        to_onnx(model, Signature((ColumnSpec("x", "float64"),)), tmp_path / "onnx")
