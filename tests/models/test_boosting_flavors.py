"""XGBoost and LightGBM flavors: their native formats (no pickle), the shared flavor suite on
classifiers and regressors of several kinds of data, probabilities, and serving one package
through `conveyor serve`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from conveyor.models import FlavorCase, flavor_checks


def _need(module: str) -> Any:
    return pytest.importorskip(module, reason=f"{module} is not installed: pip install 'conveyor-mlops[{module}]'")


def _cancer() -> tuple[Any, Any]:
    from sklearn.datasets import load_breast_cancer

    frame, target = load_breast_cancer(return_X_y=True, as_frame=True)
    frame = frame.iloc[:, :8].copy()
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    return frame, target.to_numpy()


def _iris_named() -> tuple[Any, Any]:
    """Three classes with string labels."""
    from sklearn.datasets import load_iris

    data = load_iris(as_frame=True)
    frame = data.frame.drop(columns=["target"])
    frame.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    return frame, np.asarray(data.target_names)[data.target.to_numpy()]


def _regression() -> tuple[Any, Any]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    return x, x @ np.array([1.5, -2.0, 0.5, 0.0, 3.0]) + rng.normal(scale=0.1, size=200)


def _xgb_classifier(request: pytest.FixtureRequest) -> FlavorCase:
    xgb = _need("xgboost")
    frame, y = _cancer()
    model = xgb.XGBClassifier(n_estimators=20, max_depth=3, random_state=0).fit(frame, y)
    return FlavorCase("xgboost", model, frame.iloc[:12], model.predict)


def _xgb_multiclass(request: pytest.FixtureRequest) -> FlavorCase:
    xgb = _need("xgboost")
    frame, names = _iris_named()
    y = np.unique(names, return_inverse=True)[1]  # XGBoost wants 0..k-1
    model = xgb.XGBClassifier(n_estimators=15, max_depth=2, random_state=0).fit(frame, y)
    return FlavorCase("xgboost", model, frame.iloc[::15], model.predict, options={"format": "json"})


def _xgb_regressor(request: pytest.FixtureRequest) -> FlavorCase:
    xgb = _need("xgboost")
    x, y = _regression()
    model = xgb.XGBRegressor(n_estimators=30, max_depth=3, random_state=0).fit(x, y)
    return FlavorCase("xgboost", model, x[:10], model.predict)


def _xgb_booster(request: pytest.FixtureRequest) -> FlavorCase:
    xgb = _need("xgboost")
    x, y = _regression()
    booster = xgb.train({"max_depth": 3, "objective": "reg:squarederror"}, xgb.DMatrix(x, label=y), 25)
    return FlavorCase("xgboost", booster, x[:10], lambda data: booster.inplace_predict(np.asarray(data)))


def _lgbm_classifier(request: pytest.FixtureRequest) -> FlavorCase:
    lgb = _need("lightgbm")
    frame, y = _cancer()
    model = lgb.LGBMClassifier(n_estimators=20, num_leaves=7, random_state=0, verbose=-1).fit(frame, y)
    return FlavorCase("lightgbm", model, frame.iloc[:12], model.predict)


def _lgbm_multiclass(request: pytest.FixtureRequest) -> FlavorCase:
    lgb = _need("lightgbm")
    frame, names = _iris_named()
    model = lgb.LGBMClassifier(n_estimators=15, num_leaves=5, min_child_samples=5, random_state=0,
                               verbose=-1).fit(frame, names)
    return FlavorCase("lightgbm", model, frame.iloc[::15], model.predict)


def _lgbm_regressor(request: pytest.FixtureRequest) -> FlavorCase:
    lgb = _need("lightgbm")
    x, y = _regression()
    model = lgb.LGBMRegressor(n_estimators=30, num_leaves=7, random_state=0, verbose=-1).fit(x, y)
    return FlavorCase("lightgbm", model, x[:10], model.predict)


def _lgbm_booster(request: pytest.FixtureRequest) -> FlavorCase:
    lgb = _need("lightgbm")
    x, y = _regression()
    booster = lgb.train({"objective": "regression", "num_leaves": 7, "verbose": -1}, lgb.Dataset(x, y), 20)
    return FlavorCase("lightgbm", booster, x[:10], booster.predict)


CASES: dict[str, Callable[[pytest.FixtureRequest], FlavorCase]] = {
    "xgb-classifier-frame": _xgb_classifier,
    "xgb-multiclass-json": _xgb_multiclass,
    "xgb-regressor-array": _xgb_regressor,
    "xgb-booster": _xgb_booster,
    "lgbm-classifier-frame": _lgbm_classifier,
    "lgbm-multiclass-strings": _lgbm_multiclass,
    "lgbm-regressor-array": _lgbm_regressor,
    "lgbm-booster": _lgbm_booster,
}


@pytest.fixture(scope="module", params=list(CASES.values()), ids=list(CASES))
def case(request: pytest.FixtureRequest) -> FlavorCase:
    return request.param(request)


@pytest.mark.parametrize("check", flavor_checks(), ids=lambda c: c.__name__)
def test_flavor_suite(case: FlavorCase, check: Callable[[FlavorCase, Path], None], tmp_path: Path) -> None:
    check(case, tmp_path)


@pytest.mark.parametrize(("maker", "native_file"), [
    (_xgb_classifier, "model.ubj"), (_xgb_multiclass, "model.json"), (_lgbm_multiclass, "model.txt"),
])
def test_classifiers_store_the_native_format_and_answer_probabilities(
    maker: Callable[[Any], FlavorCase], native_file: str, tmp_path: Path
) -> None:
    import conveyor.models

    case = maker(None)
    conveyor.models.save(case.model, tmp_path / "pkg", input_example=case.example, **case.options)
    assert sorted(p.name for p in (tmp_path / "pkg").iterdir()) == sorted(
        ["conveyor-model.json", "input_example.json", native_file])
    if native_file == "model.txt":
        assert (tmp_path / "pkg" / native_file).read_text().startswith("tree\n")
    elif native_file == "model.json":
        assert "learner" in json.loads((tmp_path / "pkg" / native_file).read_text())
    loaded = conveyor.models.load(tmp_path / "pkg")
    assert loaded.has_proba
    np.testing.assert_allclose(loaded.predict_proba(case.example), case.model.predict_proba(case.example), rtol=1e-5)
    np.testing.assert_array_equal(loaded.predict(case.example), case.model.predict(case.example))
    # columns in another order reach the right features
    shuffled = case.example[list(reversed(case.example.columns))]
    np.testing.assert_array_equal(loaded.predict(shuffled), case.model.predict(case.example))


def test_regressors_have_no_probabilities(tmp_path: Path) -> None:
    import conveyor.models
    from conveyor.errors import InvalidInput

    for maker in (_xgb_regressor, _lgbm_regressor):
        case = maker(None)
        folder = tmp_path / case.flavor
        conveyor.models.save(case.model, folder, input_example=case.example)
        loaded = conveyor.models.load(folder)
        assert not loaded.has_proba
        with pytest.raises(InvalidInput, match="predict_proba"):
            loaded.predict_proba(case.example)


@pytest.mark.parametrize("flavor", ["xgboost", "lightgbm"])
def test_a_package_naming_another_class_or_file_is_refused(flavor: str, tmp_path: Path) -> None:
    import conveyor.models
    from conveyor.errors import InvalidInput

    case = (_xgb_regressor if flavor == "xgboost" else _lgbm_regressor)(None)
    conveyor.models.save(case.model, tmp_path / "pkg", input_example=case.example)
    meta_file = tmp_path / "pkg" / "conveyor-model.json"
    meta = json.loads(meta_file.read_text())
    for key, value in (("kind", "os:system"), ("file", "../../etc/passwd")):
        hostile = {**meta, "flavor_config": {**meta["flavor_config"], key: value}}
        meta_file.write_text(json.dumps(hostile))
        with pytest.raises(InvalidInput, match="flavor_config"):
            conveyor.models.load(tmp_path / "pkg")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
@pytest.mark.parametrize("maker", [_xgb_classifier, _lgbm_multiclass], ids=["xgboost", "lightgbm"])
def test_served_through_conveyor_serve(maker: Callable[[Any], FlavorCase], tmp_path: Path) -> None:
    import conveyor.models

    case = maker(None)
    conveyor.models.save(case.model, tmp_path / "pkg", input_example=case.example)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "conveyor", "serve", str(tmp_path / "pkg"), "--name", "boost", "--port", str(port),
         "--no-log", "--log-level", "warning"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not become ready"
            time.sleep(0.3)
        rows = case.example.iloc[:4]
        want = case.model.predict(rows).tolist()
        r = httpx.post(f"{url}/invocations", json={"dataframe_split": {
            "columns": list(rows.columns), "data": rows.to_numpy().tolist()}})
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == want
        r = httpx.post(f"{url}/v2/models/boost/infer", json={"inputs": [
            {"name": c, "shape": [4], "datatype": "FP64", "data": rows[c].tolist()} for c in rows.columns]})
        assert r.status_code == 200, r.text
        assert r.json()["outputs"][0]["data"] == want
    finally:
        proc.terminate()
        proc.wait(60)
