"""Both wire protocols against a real scikit-learn package: OIP v2 and MLflow's /invocations."""

from __future__ import annotations

import io
from typing import Any

import httpx
import numpy as np
import pytest

from conftest import Doubler, client, live_server, run, split_body


@pytest.fixture
def bc_app(make_app: Any, bc_model: Any) -> Any:
    return make_app(("bc", bc_model, "3"))


def test_oip_health_metadata_and_ready(bc_app: Any, bc_data: Any) -> None:
    async def go() -> None:
        async with client(bc_app) as c:
            assert (await c.get("/v2/health/live")).json() == {"live": True}
            assert (await c.get("/v2/health/ready")).json() == {"ready": True}
            server = (await c.get("/v2")).json()
            assert server["name"] == "conveyor" and "version" in server
            meta = (await c.get("/v2/models/bc")).json()
            assert meta["name"] == "bc" and meta["versions"] == ["3"] and meta["platform"] == "conveyor_sklearn"
            assert [i["name"] for i in meta["inputs"]] == list(bc_data.data.columns)
            assert meta["inputs"][0] == {"name": "mean radius", "datatype": "FP64", "shape": [-1]}
            assert meta["outputs"] == [{"name": "prediction", "datatype": "INT64", "shape": [-1]},
                                       {"name": "probabilities", "datatype": "FP64", "shape": [-1, 2],
                                        "parameters": {"classes": [0, 1]}}]  # the labels, from the package
            assert (await c.get("/v2/models/bc/versions/3")).json()["name"] == "bc"
            assert (await c.get("/v2/models/bc/ready")).json() == {"name": "bc", "ready": True}
            assert (await c.get("/v2/models/bc/versions/3/ready")).json()["ready"] is True
            assert (await c.get("/v2/models")).json() == {"models": ["bc"]}

    run(go())


def test_oip_infer_one_tensor_per_column_and_one_matrix(bc_app: Any, bc_data: Any, bc_model: Any) -> None:
    rows = bc_data.data.iloc[:4]
    expected = bc_model.predict(rows).tolist()
    per_column = {"id": "req-1", "inputs": [
        {"name": c, "shape": [4], "datatype": "FP64", "data": rows[c].tolist()} for c in rows.columns]}
    matrix = {"inputs": [{"name": "input-0", "shape": [4, 30], "datatype": "FP32",
                          "data": rows.to_numpy().reshape(-1).tolist()}], "outputs": [{"name": "prediction"}]}

    async def go() -> None:
        async with client(bc_app) as c:
            first = (await c.post("/v2/models/bc/infer", json=per_column)).json()
            assert first["id"] == "req-1" and first["model_name"] == "bc" and first["model_version"] == "3"
            assert first["outputs"] == [{"name": "prediction", "datatype": "INT64", "shape": [4], "data": expected}]
            second = await c.post("/v2/models/bc/versions/3/infer", json=matrix)
            assert second.status_code == 200, second.text
            assert second.json()["outputs"][0]["data"] == expected
            assert second.headers["x-request-id"] == second.json()["id"]

    run(go())


@pytest.mark.parametrize("shape", ["[rows]", "[rows, 1]"])
def test_oip_scalar_column_accepts_both_shapes(make_app: Any, shape: str) -> None:
    app = make_app(("d", Doubler()))
    tensor_shape = [3] if shape == "[rows]" else [3, 1]

    async def go() -> None:
        async with client(app) as c:
            r = await c.post("/v2/models/d/infer", json={"inputs": [
                {"name": "x", "shape": tensor_shape, "datatype": "FP64", "data": [1, 2, 3]}]})
            assert r.json()["outputs"] == [{"name": "y", "datatype": "FP64", "shape": [3], "data": [2.0, 4.0, 6.0]}]

    run(go())


def _mlflow_bodies(frame: Any) -> list[tuple[str, Any]]:
    return [
        ("dataframe_split", split_body(frame)),
        ("dataframe_records", {"dataframe_records": frame.to_dict(orient="records")}),
        ("instances rows", {"instances": frame.to_numpy().tolist()}),
        ("instances records", {"instances": frame.to_dict(orient="records")}),
        ("inputs columns", {"inputs": {c: frame[c].tolist() for c in frame.columns}}),
    ]


def test_mlflow_every_json_format_and_csv(bc_app: Any, bc_data: Any, bc_model: Any) -> None:
    rows = bc_data.data.iloc[10:13]
    expected = bc_model.predict(rows).tolist()
    buffer = io.StringIO()
    rows.to_csv(buffer, index=False)

    async def go() -> None:
        async with client(bc_app) as c:
            for label, body in _mlflow_bodies(rows):
                r = await c.post("/invocations", json=body)
                assert r.status_code == 200, (label, r.text)
                assert r.json() == {"predictions": expected}, label
            r = await c.post("/invocations", content=buffer.getvalue(), headers={"content-type": "text/csv"})
            assert r.json() == {"predictions": expected}
            assert (await c.get("/ping")).status_code == 200
            assert (await c.get("/health")).status_code == 200
            assert (await c.get("/version")).text

    run(go())


def test_docs_and_openapi(bc_app: Any) -> None:
    async def go() -> None:
        async with client(bc_app) as c:
            doc = (await c.get("/openapi.json")).json()
            assert doc["openapi"].startswith("3.")
            assert {"/v2/models/{name}/infer", "/invocations", "/v2/models/{name}/feedback"} <= set(doc["paths"])
            page = await c.get("/docs")
            assert page.status_code == 200 and "/openapi.json" in page.text and "cdn" not in page.text.lower()

    run(go())


def test_real_http_mlflow_client_shapes(bc_app: Any, bc_data: Any, bc_model: Any) -> None:
    rows = bc_data.data.iloc[:2]
    with live_server(bc_app) as url:
        r = httpx.post(f"{url}/invocations", json=split_body(rows))
        assert r.json() == {"predictions": bc_model.predict(rows).tolist()}
        assert httpx.get(f"{url}/v2/health/ready").json() == {"ready": True}


def test_triton_http_client_works_unchanged(bc_app: Any, bc_data: Any, bc_model: Any) -> None:
    tritonclient = pytest.importorskip("tritonclient.http")
    rows = bc_data.data.iloc[:5]
    with live_server(bc_app) as url:
        c = tritonclient.InferenceServerClient(url=url.removeprefix("http://"))
        try:
            assert c.is_server_live() and c.is_server_ready() and c.is_model_ready("bc")
            meta = c.get_model_metadata("bc")
            assert meta["name"] == "bc" and len(meta["inputs"]) == 30
            tensor = tritonclient.InferInput("input-0", [5, 30], "FP64")
            tensor.set_data_from_numpy(rows.to_numpy().astype(np.float64), binary_data=False)
            out = tritonclient.InferRequestedOutput("prediction", binary_data=False)
            result = c.infer("bc", [tensor], outputs=[out], request_id="triton-1")
            assert result.as_numpy("prediction").tolist() == bc_model.predict(rows).tolist()
            assert result.get_response()["id"] == "triton-1"
        finally:
            c.close()
