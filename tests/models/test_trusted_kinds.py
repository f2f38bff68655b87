"""The scikit-learn models a user's project holds load with the default trust policy.

Issue 10: RandomForest, GradientBoosting, HistGradientBoosting, DecisionTree, KNN and
pipelines with SimpleImputer/FunctionTransformer/ColumnTransformer were refused
(``not trusted: sklearn.tree._tree.Tree``, ``numpy.dtype``). Each kind here is saved,
loaded (folder and artifact store), served in-process over ``/invocations`` and OIP v2,
and the forest by a real ``conveyor serve`` process; a user's own function loads once it
is trusted by name (``--trust``, ``[models] trusted_modules``, ``trusted=[...]``).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import conveyor.models
from conveyor.models import TrustPolicy, UntrustedTypes, load, load_from_store, save, set_trust


@pytest.fixture(autouse=True)
def _default_trust() -> Any:
    set_trust(TrustPolicy())
    yield
    set_trust(None)


def _wine() -> tuple[Any, Any]:
    from sklearn.datasets import load_wine

    frame, target = load_wine(return_X_y=True, as_frame=True)
    frame.columns = [c.replace("/", "_") for c in frame.columns]
    return frame, target.to_numpy()


def _forest() -> Any:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=10, random_state=0)


def _gbr() -> Any:
    from sklearn.ensemble import GradientBoostingRegressor

    return GradientBoostingRegressor(n_estimators=10, random_state=0)


def _hgb() -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_iter=10, random_state=0)


def _tree() -> Any:
    from sklearn.tree import DecisionTreeClassifier

    return DecisionTreeClassifier(random_state=0)


def _knn() -> Any:
    from sklearn.neighbors import KNeighborsClassifier

    return KNeighborsClassifier(n_neighbors=3)


def _imputer_pipeline() -> Any:
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    return make_pipeline(SimpleImputer(), FunctionTransformer(np.log1p), StandardScaler(),
                         LogisticRegression(max_iter=1000))


def _mixed_pipeline() -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    columns = ColumnTransformer([
        ("cat", OneHotEncoder(handle_unknown="ignore"), ["colour"]),
        ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["alcohol", "malic_acid"]),
    ])
    return Pipeline([("columns", columns), ("forest", RandomForestClassifier(n_estimators=10, random_state=0))])


def _data(kind: str) -> tuple[Any, Any]:
    frame, target = _wine()
    frame = frame.iloc[:, :6].copy()
    if kind == "gbr":
        return frame.drop(columns="alcohol"), frame["alcohol"].to_numpy()
    if kind == "imputer-pipeline":
        frame.iloc[::7, 1] = np.nan  # missing values the imputer fills
    if kind == "mixed-pipeline":
        frame = frame[["alcohol", "malic_acid"]].copy()
        frame.iloc[::5, 1] = np.nan
        frame["colour"] = np.where(target == 0, "red", np.where(target == 1, "white", "rose"))
    return frame, target


KINDS: dict[str, Callable[[], Any]] = {
    "random-forest": _forest, "gbr": _gbr, "hist-gradient-boosting": _hgb, "decision-tree": _tree,
    "knn": _knn, "imputer-pipeline": _imputer_pipeline, "mixed-pipeline": _mixed_pipeline,
}


@pytest.fixture(scope="module", params=list(KINDS), ids=list(KINDS))
def fitted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any, Path]:
    frame, target = _data(request.param)
    model = KINDS[request.param]().fit(frame, target)
    pkg = tmp_path_factory.mktemp(request.param) / "pkg"
    save(model, pkg, input_example=frame.iloc[:5])
    return model, frame, pkg


def test_each_kind_loads_with_the_default_policy_and_predicts_the_same(fitted: Any) -> None:
    model, frame, pkg = fitted
    loaded = load(pkg)
    assert loaded.flavor == "sklearn"
    np.testing.assert_allclose(loaded.predict(frame.iloc[:20]), model.predict(frame.iloc[:20]))
    recorded = loaded.meta.references  # what conveyor recorded at save time
    assert recorded and all(r["kind"] in ("class", "callable") for r in recorded)
    assert loaded.meta.files and "model.skops" in loaded.meta.files


def test_each_kind_loads_from_the_artifact_store(fitted: Any, tmp_path: Path) -> None:
    from conveyor.blobs import BlobStore

    model, frame, pkg = fitted
    blobs = BlobStore.open(tmp_path / "blobs")
    blobs.init()
    tree = blobs.put_tree(pkg)
    loaded = load_from_store(blobs, str(tree.digest))
    np.testing.assert_allclose(loaded.predict(frame.iloc[:5]), model.predict(frame.iloc[:5]))


def test_each_kind_is_served_over_both_protocols(fitted: Any) -> None:
    import httpx
    import pandas as pd

    from conveyor.serving import ServedModel, ServingConfig, create_app

    model, frame, pkg = fitted
    rows = frame.iloc[:4]
    app = create_app([ServedModel("m", load(pkg), "1")], config=ServingConfig(log_predictions=False))

    async def call() -> tuple[Any, Any]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                body = {"dataframe_split": {"columns": list(rows.columns),
                                            "data": rows.astype(object).where(rows.notna(), None).to_numpy().tolist()}}
                mlflow = await c.post("/invocations", json=body)
                inputs = []
                for name in rows.columns:
                    column = rows[name]
                    if not pd.api.types.is_numeric_dtype(column):
                        inputs.append({"name": name, "shape": [len(rows)], "datatype": "BYTES",
                                       "data": column.tolist()})
                    else:
                        inputs.append({"name": name, "shape": [len(rows)], "datatype": "FP64",
                                       "data": [None if np.isnan(v) else float(v) for v in column]})
                oip = await c.post("/v2/models/m/infer", json={"inputs": inputs})
                return mlflow, oip

    mlflow, oip = asyncio.run(call())
    want = model.predict(rows)
    assert mlflow.status_code == 200, mlflow.text
    np.testing.assert_allclose(mlflow.json()["predictions"], want)
    assert oip.status_code == 200, oip.text
    np.testing.assert_allclose(oip.json()["outputs"][0]["data"], want)


def test_autolog_random_forest_loads_back(project: Path) -> None:
    import conveyor

    frame, target = _wine()
    conveyor.autolog(experiment="auto-forest")
    try:
        forest = _forest().fit(frame, target)
    finally:
        conveyor.autolog(disable=True)
    (run,) = conveyor.search_runs("auto-forest", output="runs")
    loaded = load(f"runs:/{run.id}/model")
    np.testing.assert_array_equal(loaded.predict(frame.iloc[:10]), forest.predict(frame.iloc[:10]))


# -- a user's own code: refused until named, then loaded -------------------------------------------
USER_MODULE = "conveyor_user_features"


@pytest.fixture
def user_function_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    (tmp_path / f"{USER_MODULE}.py").write_text("import numpy as np\n\ndef clean(x):\n    return np.sqrt(x)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    clean = importlib.import_module(USER_MODULE).clean
    frame, target = _wine()
    model = make_pipeline(FunctionTransformer(clean), LogisticRegression(max_iter=2000)).fit(frame, target)
    pkg = tmp_path / "pkg"
    save(model, pkg, input_example=frame.iloc[:5])
    return pkg, model


def test_a_user_function_loads_only_when_named(user_function_package: Any) -> None:
    pkg, model = user_function_package
    frame, _ = _wine()
    with pytest.raises(UntrustedTypes, match=f"{USER_MODULE}.clean"):
        load(pkg)
    with pytest.raises(UntrustedTypes):  # its module is not enough: a function is named in full
        load(pkg, trusted=[USER_MODULE])
    loaded = load(pkg, trusted=[f"{USER_MODULE}:clean"])
    np.testing.assert_array_equal(loaded.predict(frame.iloc[:5]), model.predict(frame.iloc[:5]))


def test_trusted_modules_in_conveyor_toml_is_the_policy(project: Path, user_function_package: Any) -> None:
    pkg, _ = user_function_package
    set_trust(None)  # read the project's settings, as the Python API does
    (project / "conveyor.toml").write_text(f'[models]\ntrusted_modules = ["numpy", "scipy", "sklearn", '
                                           f'"{USER_MODULE}.clean"]\n')
    assert load(pkg).flavor == "sklearn"
    set_trust(None)
    (project / "conveyor.toml").write_text('[models]\ntrusted_modules = ["numpy", "scipy"]\n')
    with pytest.raises(UntrustedTypes) as info:  # without sklearn, its classes are not trusted
        load(pkg)
    assert "sklearn." in str(info.value) and "[models] trusted_modules" in str(info.value)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(args: list[str], cwd: Path, pythonpath: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env["PYTHONPATH"] = os.pathsep.join([pythonpath, env.get("PYTHONPATH", "")])
    return subprocess.Popen([sys.executable, "-m", "conveyor", "serve", *args, "--log-level", "warning"],
                            cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.slow
def test_conveyor_serve_answers_with_a_user_function_trusted_by_flag(
    project: Path, user_function_package: Any
) -> None:
    import httpx

    pkg, model = user_function_package
    frame, _ = _wine()
    refused = _serve([str(pkg), "--port", str(_free_port())], project, str(pkg.parent))
    assert refused.wait(120) == 2
    assert refused.stderr is not None
    assert f"--trust {USER_MODULE}.clean" in refused.stderr.read().decode() + ""
    port = _free_port()
    proc = _serve([str(pkg), "--name", "wine", "--port", str(port), "--trust", f"{USER_MODULE}.clean"],
                  project, str(pkg.parent))
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not become ready"
            time.sleep(0.2)
        rows = frame.iloc[:3]
        r = httpx.post(f"http://127.0.0.1:{port}/invocations",
                       json={"dataframe_split": {"columns": list(rows.columns), "data": rows.to_numpy().tolist()}})
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == model.predict(rows).tolist()
    finally:
        proc.terminate()
        proc.wait(60)


@pytest.mark.slow
def test_ci_check_gates_a_forest_from_a_pipeline(project: Path) -> None:
    """materializer (step output) → candidate package → gate, all under the one default policy."""
    import uuid

    from typer.testing import CliRunner

    from conveyor.cli import app

    module = f"forest_{uuid.uuid4().hex[:8]}"
    (project / f"{module}.py").write_text('''
import conveyor.pipelines


@conveyor.pipelines.step
def train():
    from sklearn.datasets import load_wine
    from sklearn.ensemble import RandomForestClassifier
    X, y = load_wine(return_X_y=True, as_frame=True)
    X.columns = [c.replace("/", "_") for c in X.columns]
    return RandomForestClassifier(n_estimators=10, random_state=0).fit(X.iloc[::2], y.iloc[::2])


@conveyor.pipelines.pipeline(candidate="train")
def pipeline():
    train()
''', encoding="utf-8")
    frame, target = _wine()
    frame.assign(label=target).iloc[1::2].to_csv(project / "holdout.csv", index=False)
    (project / "conveyor.toml").write_text(
        '[tracking]\nflush_interval = 0.05\n[gates.default]\nmodel = "wine"\ndata = "holdout.csv"\n'
        'metrics = ["accuracy >= 0.8"]\n', encoding="utf-8",
    )
    runner = CliRunner()
    assert runner.invoke(app, ["init"]).exit_code == 0
    result = runner.invoke(app, ["ci", "check", "--pipeline", f"{module}:pipeline"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "PASSED" in result.output
    assert conveyor.models  # the forest was loaded by the gate through conveyor.models
