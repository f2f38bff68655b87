"""Hostile requests against the inference server: each one is answered 4xx (never 5xx),
and none breaks the server, its prediction log, its /metrics or the monitors for later
requests. Transport-level attacks (connections that trickle header lines) run against a
real uvicorn server on 127.0.0.1; the rest in-process through httpx's ASGI transport.

Models are real scikit-learn estimators on two data sets: a logistic regression saved and
loaded as a conveyor model package (breast cancer, 30 float columns) and a random forest
(wine, 13 float columns) served directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
import pytest

from conveyor.entities import ColumnSpec, Signature


# -- models and servers -----------------------------------------------------------------------------
class Forest:
    """A RandomForestClassifier behind the Predictor protocol (wine data, integer classes)."""

    flavor = "sklearn"

    def __init__(self) -> None:
        from sklearn.datasets import load_wine
        from sklearn.ensemble import RandomForestClassifier

        data = load_wine(as_frame=True)
        self.columns = list(data.data.columns)
        self.model = RandomForestClassifier(n_estimators=10, random_state=0).fit(data.data.to_numpy(), data.target)
        self.signature = Signature(tuple(ColumnSpec(c, "float64") for c in self.columns),
                                   (ColumnSpec("prediction", "int64"),))
        self.first = data.data.iloc[0].tolist()

    def predict(self, data: Any) -> Any:
        return self.model.predict(np.asarray(data, dtype=float))


@pytest.fixture(scope="module")
def forest() -> Forest:
    return Forest()


@pytest.fixture(scope="module")
def logreg(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A real conveyor model package: scaler + logistic regression on breast-cancer data."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import conveyor.models

    data = load_breast_cancer(as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(data.data, data.target)
    folder = tmp_path_factory.mktemp("pkg") / "bc"
    conveyor.models.save(model, folder, input_example=data.data[:5])
    return SimpleNamespace(model=conveyor.models.load(folder), columns=list(data.data.columns))


def make_app(*models: Any, tracker: Any = None, **config: Any) -> Any:
    from conveyor.serving import ServedModel, ServingConfig, create_app

    config.setdefault("log_predictions", tracker is not None)
    config.setdefault("log_flush_s", 0.05)
    return create_app([ServedModel(*m) for m in models], tracker=tracker, config=ServingConfig(**config))


@contextlib.asynccontextmanager
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://serving.test") as c:
            yield c


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(app: Any, requests: list[tuple[str, str, Any]]) -> list[httpx.Response]:
    """Send (method, path, body) in order; a str body goes as text/csv, bytes as raw JSON."""

    async def go() -> list[httpx.Response]:
        out = []
        async with client(app) as c:
            for method, path, body in requests:
                if isinstance(body, str):
                    out.append(await c.request(method, path, content=body, headers={"content-type": "text/csv"}))
                elif isinstance(body, bytes):
                    out.append(await c.request(method, path, content=body,
                                               headers={"content-type": "application/json"}))
                else:
                    out.append(await c.request(method, path, json=body))
        return out

    return list(run(go()))


def _row_csv(columns: list[str], values: list[Any]) -> str:
    return ",".join(columns) + "\n" + ",".join(str(v) for v in values) + "\n"


# -- non-finite numbers, empty requests, deep nesting, huge numbers, odd shapes ----------------------------
def test_infinities_never_reach_the_model(forest: Forest, logreg: Any) -> None:
    """`Infinity` in JSON and `inf`/`1e999` in CSV made scikit-learn raise: a 500."""
    for name, cols, first in (("wine", forest.columns, forest.first), ("bc", logreg.columns, [1.0] * 30)):
        app = make_app(("wine", forest, "1"), ("bc", logreg.model, "2"))
        json_row = b'{"dataframe_split": {"columns": ' + json.dumps(cols).encode() + b', "data": [[Infinity' \
            + b"".join(b", " + json.dumps(v).encode() for v in first[1:]) + b"]]}}"
        oip = {"inputs": [{"name": "x", "shape": [1, len(cols)], "datatype": "FP64", "data": [first]}]}
        neg = b'{"instances": [[-Infinity' + b"".join(b", " + json.dumps(v).encode() for v in first[1:]) + b"]]}"
        answers = _answers(app, [
            ("POST", f"/invocations?model={name}", json_row),
            ("POST", f"/invocations?model={name}", neg),
            ("POST", f"/invocations?model={name}", _row_csv(cols, ["inf", *first[1:]])),
            ("POST", f"/invocations?model={name}", _row_csv(cols, [*first[:-1], "1e999"])),
            ("POST", f"/v2/models/{name}/infer", json.dumps(oip).replace(str(first[0]), "Infinity", 1).encode()),
            ("POST", f"/invocations?model={name}", _row_csv(cols, first)),  # and a good one still works
        ])
        assert [a.status_code for a in answers] == [422, 422, 422, 422, 422, 200], [a.text for a in answers]
        assert "infinite value" in answers[0].json()["error"] and repr(cols[0]) in answers[0].json()["error"]
        assert repr(cols[-1]) in answers[3].json()["error"]


def test_zero_rows_are_a_client_mistake(forest: Forest, logreg: Any) -> None:
    for name, cols in (("wine", forest.columns), ("bc", logreg.columns)):
        app = make_app(("wine", forest, "1"), ("bc", logreg.model, "2"))
        answers = _answers(app, [
            ("POST", f"/invocations?model={name}", {"dataframe_split": {"columns": cols, "data": []}}),
            ("POST", f"/invocations?model={name}", {"inputs": {c: [] for c in cols}}),
            ("POST", f"/v2/models/{name}/infer",
             {"inputs": [{"name": "x", "shape": [0, len(cols)], "datatype": "FP64", "data": []}]}),
            ("POST", f"/v2/models/{name}/infer",
             {"inputs": [{"name": c, "shape": [0], "datatype": "FP64", "data": []} for c in cols]}),
        ])
        assert [a.status_code for a in answers] == [422] * 4, [a.text for a in answers]
        assert all("no rows" in a.json()["error"] for a in answers)


def test_deeply_nested_nan_is_a_400(forest: Forest) -> None:
    """A NaN literal sends the body to Python's parser, which recursed until RecursionError."""
    app = make_app(("wine", forest, "1"))
    deep = b'{"instances": ' + b"[" * 1100 + b"NaN" + b"]" * 1100 + b"}"
    shallow_enough = b'{"instances": ' + b"[" * 900 + b"NaN" + b"]" * 900 + b"}"
    answers = _answers(app, [("POST", "/invocations", deep), ("POST", "/invocations", shallow_enough),
                             ("POST", "/invocations", {"instances": [forest.first]})])
    assert [a.status_code for a in answers[:2]] in ([400, 422], [400, 400]), [a.text for a in answers]
    assert "nested" in answers[0].json()["error"]
    assert answers[2].status_code == 200


def test_huge_integers_beside_nan_are_a_422(forest: Forest, logreg: Any) -> None:
    huge = b"1" + b"0" * 400
    for name, n in (("wine", 13), ("bc", 30)):
        app = make_app(("wine", forest, "1"), ("bc", logreg.model, "2"))
        row = b"[NaN, " + huge + b"".join(b", 1.0" for _ in range(n - 2)) + b"]"
        answers = _answers(app, [
            ("POST", f"/invocations?model={name}", b'{"instances": [' + row + b"]}"),
            ("POST", f"/invocations?model={name}", b'{"instances": [' + row.replace(b"NaN", b"1.0") + b"]}"),
            ("POST", f"/v2/models/{name}/infer", b'{"inputs": [{"name": "x", "shape": [1, ' + str(n).encode()
             + b'], "datatype": "FP64", "data": [' + row + b"]}]}"),
        ])
        assert all(400 <= a.status_code < 500 for a in answers), [(a.status_code, a.text) for a in answers]


@pytest.mark.parametrize("shape", [[0, 2**63], [0, 2**40], [1] * 70, [1] * 33, [], [0] * 65])
def test_oip_shapes_numpy_cannot_hold_are_a_422(forest: Forest, shape: list[int]) -> None:
    app = make_app(("wine", forest, "1"))
    body = {"inputs": [{"name": "x", "shape": shape, "datatype": "FP64", "data": []}]}
    (answer,) = _answers(app, [("POST", "/v2/models/wine/infer", body)])
    assert answer.status_code == 422, answer.text
    assert "shape" in answer.json()["error"]
