"""Class probabilities as a second output, asked for per request: OIP ``outputs:
[{"name": "probabilities"}]`` and ``/invocations?output=probabilities``. Real model
packages: a random forest on wine (3 classes) and a scaled logistic regression on breast
cancer (2 classes); a regressor has no probabilities and says so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import client, run


def _package(tmp: Path, name: str, model: Any, data: Any) -> Any:
    import conveyor.models

    model.fit(data.data, data.target)
    conveyor.models.save(model, tmp / name, input_example=data.data[:5])
    # forests hold sklearn's Tree objects, which a load trusts only when told
    return model, conveyor.models.load(tmp / name, trusted=["sklearn.tree._tree.Tree"])


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    tmp = tmp_path_factory.mktemp("proba")
    wine, bc, diabetes = load_wine(as_frame=True), load_breast_cancer(as_frame=True), load_diabetes(as_frame=True)
    return {
        "wine": (*_package(tmp, "wine", RandomForestClassifier(n_estimators=20, random_state=0), wine), wine),
        "bc": (*_package(tmp, "bc", make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)), bc), bc),
        "sugar": (*_package(tmp, "sugar", Ridge(), diabetes), diabetes),
    }


@pytest.mark.parametrize("name, classes", [("wine", 3), ("bc", 2)])
def test_probabilities_on_both_protocols(make_app: Any, tracker: Any, packages: dict[str, Any], name: str,
                                         classes: int) -> None:
    from conveyor.serving import read_prediction_log

    native, loaded, data = packages[name]
    rows = data.data.iloc[::40]
    want_proba = native.predict_proba(rows)
    want_label = native.predict(rows)
    app = make_app((name, loaded, "1"), tracker=tracker)
    oip_in = {"inputs": [{"name": "x", "shape": list(rows.shape), "datatype": "FP64", "data": rows.values.tolist()}]}
    out: dict[str, Any] = {}

    async def go() -> None:
        async with client(app) as c:
            out["meta"] = (await c.get(f"/v2/models/{name}")).json()
            out["plain"] = (await c.post(f"/v2/models/{name}/infer", json=oip_in)).json()
            out["proba"] = (await c.post(f"/v2/models/{name}/infer", json={
                **oip_in, "outputs": [{"name": "probabilities"}]})).json()
            out["both"] = (await c.post(f"/v2/models/{name}/infer", json={
                **oip_in, "outputs": [{"name": "prediction"}, {"name": "probabilities"}]})).json()
            split = {"dataframe_split": {"columns": list(rows.columns), "data": rows.values.tolist()}}
            out["mlflow"] = (await c.post("/invocations?output=probabilities", json=split)).json()
            out["mlflow_both"] = (await c.post("/invocations?output=prediction,probabilities", json=split)).json()
            out["mlflow_plain"] = (await c.post("/invocations", json=split)).json()
            out["bad"] = await c.post("/invocations?output=scores", json=split)

    run(go())
    # the signature the server reports records both outputs
    assert [o["name"] for o in out["meta"]["outputs"]] == ["prediction", "probabilities"]
    assert out["meta"]["outputs"][1] == {"name": "probabilities", "datatype": "FP64", "shape": [-1, classes],
                                         "parameters": {"classes": native.classes_.tolist()}}
    assert [o["name"] for o in out["plain"]["outputs"]] == ["prediction"]
    (proba,) = out["proba"]["outputs"]
    assert proba["name"] == "probabilities" and proba["shape"] == [len(rows), classes]
    assert np.allclose(np.reshape(proba["data"], proba["shape"]), want_proba)
    both = {o["name"]: o for o in out["both"]["outputs"]}
    assert both["prediction"]["data"] == want_label.tolist()
    assert np.allclose(out["mlflow"]["predictions"], want_proba)
    assert [r["prediction"] for r in out["mlflow_both"]["predictions"]] == want_label.tolist()
    assert np.allclose([r["probabilities"] for r in out["mlflow_both"]["predictions"]], want_proba)
    assert out["mlflow_plain"]["predictions"] == want_label.tolist()
    assert out["bad"].status_code == 422 and "'scores'" in out["bad"].json()["error"]
    # the prediction log keeps the scores beside the labels
    log = read_prediction_log(name, tracker=tracker)
    assert log["probabilities"].notna().sum() == 4 * len(rows)  # the four requests that asked for them
    assert np.allclose(np.stack(log["probabilities"].dropna().iloc[:len(rows)].to_list()), want_proba)


def test_a_model_without_probabilities_says_so(make_app: Any, packages: dict[str, Any]) -> None:
    _, loaded, data = packages["sugar"]
    rows = data.data.iloc[:3]
    app = make_app(("sugar", loaded, "1"))
    out: dict[str, Any] = {}

    async def go() -> None:
        async with client(app) as c:
            out["meta"] = (await c.get("/v2/models/sugar")).json()
            out["oip"] = await c.post("/v2/models/sugar/infer", json={
                "inputs": [{"name": "x", "shape": list(rows.shape), "datatype": "FP64", "data": rows.values.tolist()}],
                "outputs": [{"name": "probabilities"}]})
            out["mlflow"] = await c.post("/invocations?output=probabilities", json={"instances": rows.values.tolist()})

    run(go())
    assert [o["name"] for o in out["meta"]["outputs"]] == ["prediction"]
    for answer in (out["oip"], out["mlflow"]):
        assert answer.status_code == 422 and "probabilities" in answer.json()["error"], answer.text


def test_unknown_output_of_a_model_without_signature_is_a_422(make_app: Any) -> None:
    class Bare:
        """No signature: its outputs are known only once it answers."""

        flavor = "python"
        signature = None

        def predict(self, data: Any) -> Any:
            return np.asarray(data, dtype=float).sum(axis=1)

    app = make_app(("bare", Bare(), "1"))
    out: dict[str, Any] = {}

    async def go() -> None:
        async with client(app) as c:
            out["bad"] = await c.post("/invocations?output=scores", json={"instances": [[1.0, 2.0]]})
            out["ok"] = await c.post("/invocations?output=prediction", json={"instances": [[1.0, 2.0]]})

    run(go())
    assert out["bad"].status_code == 422 and "'scores'" in out["bad"].json()["error"], out["bad"].text
    assert out["ok"].json() == {"predictions": [3.0]}


def test_served_probabilities_give_live_roc_auc(make_app: Any, tracker: Any, packages: dict[str, Any]) -> None:
    """Scores logged with the answers reach monitoring: live ROC AUC from feedback labels."""
    from sklearn.metrics import roc_auc_score

    from conveyor.monitoring import live_performance
    from conveyor.serving import read_prediction_log

    native, loaded, data = packages["bc"]
    rows, truth = data.data.iloc[::10], data.target.iloc[::10]
    app = make_app(("bc", loaded, "3"), tracker=tracker)

    async def go() -> None:
        async with client(app) as c:
            r = await c.post("/invocations?output=prediction,probabilities", headers={"x-request-id": "scored"},
                             json={"dataframe_split": {"columns": list(rows.columns), "data": rows.values.tolist()}})
            assert r.status_code == 200, r.text
            r = await c.post("/v2/models/bc/feedback", json={"request_id": "scored", "labels": truth.tolist()})
            assert r.status_code == 200, r.text

    run(go())
    log = read_prediction_log("bc", with_feedback=True, tracker=tracker)
    (row,) = live_performance(log, every=None, score="probabilities")
    assert row.labelled_rows == len(rows)
    assert row.metrics["roc_auc"] == pytest.approx(roc_auc_score(truth, native.predict_proba(rows)[:, 1]))
