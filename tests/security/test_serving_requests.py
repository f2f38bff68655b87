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


# -- feedback: checked against the answer it labels; one bad row never stops the log -----------------------
def _predict_then(app: Any, name: str, rows: list[list[float]], rid: str, feedback: list[Any],
                  after: list[tuple[str, str, Any]] = ()) -> list[httpx.Response]:
    return _answers(app, [
        ("POST", f"/v2/models/{name}/infer", {"id": rid, "inputs": [
            {"name": "x", "shape": [len(rows), len(rows[0])], "datatype": "FP64", "data": rows}]}),
        *[("POST", f"/v2/models/{name}/feedback", body) for body in feedback],
        *after,
    ])


def test_feedback_row_out_of_bounds_is_refused_and_the_log_keeps_working(forest: Forest, tracker: Any) -> None:
    """`row: 1099511627776` overflowed an int32 in the log writer: every later flush failed."""
    from conveyor.serving import read_feedback, read_prediction_log

    app = make_app(("wine", forest, "3"), tracker=tracker)
    rows = [forest.first, forest.first]
    answers = _predict_then(app, "wine", rows, "r1", [
        {"request_id": "r1", "label": 0, "row": 1099511627776},
        {"request_id": "r1", "labels": [0, 1, 2], "row": 0},
        {"request_id": "r1", "label": 0, "row": -1},
        {"request_id": "r1", "label": 0, "row": True},
        {"request_id": "r1", "label": 1, "row": 1},
    ], after=[("POST", "/v2/models/wine/infer", {"id": "r2", "inputs": [
        {"name": "x", "shape": [1, 13], "datatype": "FP64", "data": [forest.first]}]})])
    assert [a.status_code for a in answers] == [200, 422, 422, 422, 422, 200, 200], [a.text for a in answers]
    assert "feedback[0].row" in answers[1].json()["error"] and "2 row(s)" in answers[1].json()["error"]
    assert "feedback[0].labels" in answers[2].json()["error"]
    assert answers[5].json() == {"accepted": 1, "versions": ["3"]}
    log = read_prediction_log("wine", with_feedback=True, tracker=tracker)
    assert log.request_id.tolist() == ["r1", "r1", "r2"]  # written after the hostile feedback too
    assert log.label.isna().tolist() == [True, False, True] and log.label[1] == 1
    assert read_feedback("wine", tracker=tracker)[["row", "version"]].values.tolist() == [[1, "3"]]


def test_one_unwritable_record_is_set_aside_not_retried_forever(tracker: Any) -> None:
    """The writer itself: a record whose table cannot be built fails alone (counted), the
    others of its batch are written, and later flushes keep working."""
    from conveyor.serving import read_feedback, read_prediction_log
    from conveyor.serving._predlog import LogWriter, Record

    writer = LogWriter(tracker.store, tracker.blobs)
    ts = int(time.time() * 1000)

    def pred(rid: str, x: Any) -> Record:
        return Record("predictions", "m", "1", rid, ts, len(x), {"x": np.asarray(x)}, {"y": np.asarray(x)}, 1.0)

    writer.add(pred("ok1", [1.0, 2.0]))
    writer.add(pred("bad", np.array([1 + 2j])))  # no Parquet type: cannot be encoded
    writer.add(pred("ok2", [3.0]))
    writer.add(Record("feedback", "m", "1", "ok1", ts, 1, {}, {"label": np.array([7.0])}, first_row=2**40))
    writer.flush()
    assert writer.rejected == 1
    writer.add(pred("ok3", [4.0]))
    assert len(writer.flush()) == 1
    assert read_prediction_log("m", tracker=tracker).request_id.tolist() == ["ok1", "ok1", "ok2", "ok3"]
    assert read_feedback("m", tracker=tracker).row.tolist() == [2**40]


@pytest.mark.parametrize("labels, words", [
    (["setosa"], ["label", "numbers", "'setosa'"]),
    ([1, "a"], ["labels[1]", "numbers"]),
    ([True], ["label", "numbers"]),
    ([None], ["label", "None"]),
    ([[1]], ["label", "[1]"]),
])
def test_feedback_labels_must_match_the_model_signature(forest: Forest, tracker: Any, labels: list[Any],
                                                        words: list[str]) -> None:
    app = make_app(("wine", forest, "1"), tracker=tracker)
    rows = [forest.first] * len(labels)
    key = {"labels": labels} if len(labels) > 1 else {"label": labels[0]}
    answers = _predict_then(app, "wine", rows, "r1", [{"request_id": "r1", **key}])
    assert answers[1].status_code == 422, answers[1].text
    assert all(w in answers[1].json()["error"] for w in words), answers[1].text


def test_feedback_for_an_unknown_request_id_is_refused(forest: Forest, logreg: Any, tracker: Any) -> None:
    app = make_app(("wine", forest, "1"), ("bc", logreg.model, "4"), tracker=tracker)
    answers = _predict_then(app, "wine", [forest.first], "known", [
        {"request_id": "never-served", "label": 1},
        {"feedback": [{"request_id": "known", "label": 1}, {"request_id": "other", "label": 2}]},
    ], after=[("POST", "/v2/models/bc/feedback", {"request_id": "known", "label": 1})])  # another model's id
    assert [a.status_code for a in answers] == [200, 404, 404, 404]
    assert "'never-served'" in answers[1].json()["error"] and "feedback[1].request_id" in answers[2].json()["error"]
    from conveyor.serving import read_feedback

    assert len(read_feedback("wine", tracker=tracker)) == 0  # all or nothing


def test_feedback_for_a_request_another_worker_answered(forest: Forest, tracker: Any) -> None:
    """Two servers over one store (two workers): feedback reaches the one that did not
    answer, which finds the request in the log the other one wrote, with its version."""
    from conveyor.serving import read_prediction_log

    first = make_app(("wine", forest, "5"), tracker=tracker)
    _answers(first, [("POST", "/v2/models/wine/infer", {"id": "w1", "inputs": [
        {"name": "x", "shape": [2, 13], "datatype": "FP64", "data": [forest.first, forest.first]}]})])
    second = make_app(("wine", forest, "5"), tracker=tracker)
    answers = _answers(second, [("POST", "/v2/models/wine/feedback", {"request_id": "w1", "labels": [0, 2]}),
                                ("POST", "/v2/models/wine/feedback", {"request_id": "w1", "label": 0, "row": 2})])
    assert [a.status_code for a in answers] == [200, 422], [a.text for a in answers]
    assert answers[0].json()["versions"] == ["5"]
    assert read_prediction_log("wine", with_feedback=True, tracker=tracker).label.tolist() == [0, 2]


def test_too_many_labels_are_a_413_or_422_never_a_503(forest: Forest, tracker: Any) -> None:
    """100,000 labels for one request: the old server answered 503 (retry), which never succeeds."""
    app = make_app(("wine", forest, "1"), tracker=tracker, log_buffer_rows=50)
    many = [forest.first] * 60
    answers = _predict_then(app, "wine", [forest.first], "one", [{"request_id": "one", "labels": [0] * 100_000}])
    assert answers[1].status_code == 422, answers[1].text
    answers = _predict_then(make_app(("wine", forest, "1"), tracker=tracker, log_buffer_rows=100), "wine", many,
                            "sixty", [{"feedback": [{"request_id": "sixty", "labels": [0] * 60},
                                                    {"request_id": "sixty", "labels": [1] * 60}]}])
    assert answers[1].status_code == 413 and "log_buffer_rows" in answers[1].json()["error"], answers[1].text


def test_a_bad_label_in_the_log_does_not_stop_the_monitors(tracker: Any) -> None:
    """A string label among numeric ones (written before feedback was checked) made every
    reader of the window fail with ArrowTypeError: `monitor run` crashed, `watch` exited."""
    import pandas as pd

    from conveyor.monitoring import MonitorConfig, MonitorHooks, Monitoring, live_performance
    from conveyor.serving import read_prediction_log
    from conveyor.serving._predlog import LogWriter, Record

    writer = LogWriter(tracker.store, tracker.blobs)
    ts = int(time.time() * 1000)
    x = np.linspace(0, 1, 40)
    writer.add(Record("predictions", "m", "1", "p", ts, 40, {"x": x}, {"prediction": (x > 0.5).astype(np.int64)}, 2.0))
    writer.flush()
    writer.add(Record("feedback", "m", "1", "p", ts, 39, {}, {"label": (x[:39] > 0.5).astype(np.int64)}))
    writer.flush()
    writer.add(Record("feedback", "m", "1", "p", ts, 1, {}, {"label": np.array(["oops"], dtype=object)},
                      first_row=39))
    writer.flush()

    log = read_prediction_log("m", with_feedback=True, tracker=tracker)
    assert len(log) == 40 and log.label.isna().sum() == 1
    (row,) = live_performance(log, every=None)
    assert row.labelled_rows == 39 and row.metrics["accuracy"] == 1.0

    reference = pd.DataFrame({"x": np.linspace(0, 1, 200), "prediction": np.arange(200) % 2})
    hooks = MonitorHooks(load_window=lambda m, v, s, u: read_prediction_log(m, v, s, u, with_feedback=True,
                                                                            tracker=tracker),
                         load_reference=lambda key: reference)
    config = MonitorConfig(name="m-watch", model="m", reference="ref", rules=["accuracy < 0.5"])
    evaluation = Monitoring(tracker, hooks=hooks).evaluate(config)
    assert evaluation.status == "ok", evaluation.error
    assert evaluation.metrics["accuracy"] == 1.0 and evaluation.metrics["labelled_rows"] == 39


# -- transport: a real server process ---------------------------------------------------------------------
@contextlib.contextmanager
def serve_process(folder: Path, project: Path, *args: str) -> Iterator[str]:
    """`conveyor serve FOLDER` as a real process on 127.0.0.1 (the project's conveyor.toml applies)."""
    import os
    import subprocess
    import sys

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_") or k == "CONVEYOR_TEST_POSTGRES"}
    proc = subprocess.Popen([sys.executable, "-m", "conveyor", "serve", str(folder), "--name", "bc", "--port",
                             str(port), "--log-level", "warning", *args], cwd=project, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("server did not become ready")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture
def bc_folder(project: Path) -> Path:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    import conveyor.models

    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_breast_cancer(as_frame=True)
    folder = project / "bc-model"
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(data.data, data.target)
    conveyor.models.save(model, folder, input_example=data.data[:5])
    return folder


def _open(sockets: list[socket.socket]) -> list[bool]:
    """Which sockets the server has not closed (a read returns data or would block)."""
    alive = []
    for s in sockets:
        try:
            s.setblocking(False)
            data = s.recv(4096)
            alive.append(bool(data) and b"408" not in data)
        except BlockingIOError:
            alive.append(True)
        except OSError:
            alive.append(False)
    return alive


@pytest.mark.slow
def test_connections_that_trickle_headers_are_closed(project: Path, bc_folder: Path) -> None:
    """1,100 connections sending one header line at a time were all still open after 40 s.
    With header_timeout_s = 1, connections that trickle headers, or send nothing at all, get
    a 408 and are closed, while a normal client is answered; the deadline also applies to
    the second request of a kept-alive connection."""
    (project / "conveyor.toml").write_text("[serving]\nheader_timeout_s = 1.0\nlog_predictions = false\n",
                                           encoding="utf-8")
    with serve_process(bc_folder, project) as url:
        port = int(url.rsplit(":", 1)[1])
        tricklers = [socket.create_connection(("127.0.0.1", port)) for _ in range(200)]
        silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(50)]
        for s in tricklers:
            s.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        closed_at = None
        while time.monotonic() - started < 8:
            for i, s in enumerate(tricklers):
                with contextlib.suppress(OSError):
                    s.sendall(f"X-Slow-{i}: {time.monotonic()}\r\n".encode())
            if not any(_open(tricklers + silent)):
                closed_at = time.monotonic() - started
                break
            time.sleep(0.25)
        # a well-behaved client is still served
        answer = httpx.post(f"{url}/invocations", json={"instances": [[1.0] * 30]}, timeout=10)
        for s in tricklers + silent:
            s.close()
        fresh, keep_alive = _late_headers(port)
    assert closed_at is not None, f"{sum(_open(tricklers + silent))} slow connections still open after 8 s"
    assert answer.status_code == 200, answer.text
    assert fresh.startswith(b"HTTP/1.1 408") and b"header_timeout_s" in fresh
    # keep-alive: the second request of a connection gets its own deadline
    assert keep_alive.startswith(b"HTTP/1.1 200") and keep_alive.count(b"HTTP/1.1 ") == 2
    assert b"HTTP/1.1 408" in keep_alive


def _late_headers(port: int) -> tuple[bytes, bytes]:
    """What the server answers a request whose headers never end, on a fresh connection and
    after a first request on a kept-alive one."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n")
        s.settimeout(10)
        fresh = b""
        while chunk := s.recv(4096):
            fresh += chunk
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(10)
        kept = s.recv(4096)
        time.sleep(0.3)
        s.sendall(b"GET /v2/health/live HTTP/1.1\r\n")
        while chunk := s.recv(4096):
            kept += chunk
    return fresh, kept




# -- /metrics: labels only from what is served ---------------------------------------------------------
def test_unknown_model_names_do_not_grow_metrics(forest: Forest) -> None:
    """20,000 requests to made-up names grew /metrics from 35 KB to 125 MB (one series each)."""
    app = make_app(("wine", forest, "1"))
    body = {"inputs": [{"name": "x", "shape": [1, 13], "datatype": "FP64", "data": [forest.first]}]}

    async def go() -> tuple[str, str, list[int]]:
        async with client(app) as c:
            for path in ("/v2/models/wine/infer", "/v2/models/nope/infer", "/v2/models/wine/versions/x/infer",
                         "/invocations?model=nope"):
                await c.post(path, json=body)
            before = (await c.get("/metrics")).text
            statuses = []
            for i in range(2000):
                paths = (f"/v2/models/m{i}/infer", f"/v2/models/wine/versions/v{i}/infer",
                         f"/invocations?model=q{i}")
                statuses += [(await c.post(paths[i % 3], json=body)).status_code]
            return before, (await c.get("/metrics")).text, statuses

    before, after, statuses = run(go())
    assert set(statuses) == {404}
    assert len(after.splitlines()) == len(before.splitlines())
    assert not any(f"m{i}" in after or f"v{i}" in after or f"q{i}" in after for i in (0, 1, 1999))
    assert 'model="(unknown)"' in after


def test_an_unreadable_window_is_an_error_evaluation_not_a_crash(tracker: Any) -> None:
    """Whatever a window reader raises, the evaluation is stored as an error and the next one runs."""
    import pandas as pd
    import pyarrow as pa

    from conveyor.monitoring import MonitorConfig, MonitorHooks, Monitoring

    def broken(*_: Any) -> Any:
        raise pa.ArrowTypeError("Unable to merge: Field label has incompatible types: int64 vs string")

    reference = pd.DataFrame({"x": np.linspace(0, 1, 50)})
    monitoring = Monitoring(tracker, hooks=MonitorHooks(load_window=broken, load_reference=lambda key: reference))
    config = MonitorConfig(name="m-watch", model="m", reference="ref", rules=["drift_share > 0.5"])
    first, second = monitoring.evaluate(config), monitoring.evaluate(config)
    assert first.status == second.status == "error"
    assert "ArrowTypeError" in first.error and first.id != second.id
