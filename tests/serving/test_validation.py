"""Bad input and faults: every client mistake is a 4xx with {"error": …} naming the
problem; a failing model is a 500 whose request id is also in the log."""

from __future__ import annotations

import logging
import math
import socket
import time
from typing import Any

import httpx
import pytest

from conftest import Doubler, client, live_server, run, split_body

X1 = [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1.0]}]


def oip(inputs: Any) -> dict[str, Any]:
    return {"inputs": inputs}


# (label, path, body as JSON or raw bytes, headers, status, words the error must contain)
CASES = [
    ("malformed JSON", "/v2/models/d/infer", b'{"inputs": [', {}, 400, ["malformed JSON"]),
    ("empty body", "/invocations", b"", {}, 400, ["empty"]),
    ("no inputs", "/v2/models/d/infer", {"outputs": []}, {}, 400, ["inputs"]),
    ("tensor not an object", "/v2/models/d/infer", oip([3]), {}, 400, ["inputs[0]"]),
    ("bad datatype", "/v2/models/d/infer", oip([{**X1[0], "datatype": "FLOAT"}]), {}, 400, ["datatype", "FLOAT"]),
    ("shape vs data", "/v2/models/d/infer", oip([{**X1[0], "shape": [2]}]), {}, 422, ["'x'", "[2]"]),
    ("wrong datatype for column", "/v2/models/d/infer", oip([{**X1[0], "datatype": "BYTES", "data": ["a"]}]), {},
     422, ["'x'", "BYTES", "float64"]),
    ("strings in numbers", "/v2/models/d/infer", oip([{**X1[0], "data": ["a"]}]), {}, 422, ["'x'", "FP64"]),
    ("missing column", "/v2/models/d/infer", oip([{**X1[0], "name": "z"}]), {}, 422, ["missing", "'x'"]),
    ("extra column", "/invocations", {"dataframe_records": [{"x": 1, "z": 2}]}, {}, 422, ["unexpected", "'z'"]),
    ("NaN forbidden", "/invocations", b'{"dataframe_split": {"columns": ["x"], "data": [[1], [NaN]]}}', {},
     422, ["'x'", "missing value", "row 1"]),
    ("null forbidden", "/invocations", {"dataframe_records": [{"x": None}]}, {}, 422, ["'x'", "missing value"]),
    ("row width", "/invocations", {"dataframe_split": {"columns": ["x"], "data": [[1, 2]]}}, {}, 422, ["row 0"]),
    ("two formats", "/invocations", {"instances": [1], "inputs": [1]}, {}, 400, ["exactly one"]),
    ("no format", "/invocations", {"data": [1]}, {}, 400, ["exactly one"]),
    ("params", "/invocations", {"instances": [1], "params": {"k": 1}}, {}, 422, ["params"]),
    ("csv bad number", "/invocations", b"x\nabc\n", {"content-type": "text/csv"}, 422, ["'x'"]),
    ("media type", "/invocations", b"x=1", {"content-type": "application/x-www-form-urlencoded"}, 415,
     ["unsupported media type"]),
    ("charset", "/invocations", b"{}", {"content-type": "application/json; charset=latin-1"}, 415, ["charset"]),
    ("unknown model", "/v2/models/nope/infer", oip(X1), {}, 404, ["'nope'"]),
    ("unknown version", "/v2/models/d/versions/9/infer", oip(X1), {}, 404, ["'9'"]),
    ("unknown output", "/v2/models/d/infer", {**oip(X1), "outputs": [{"name": "q"}]}, {}, 422, ["'q'"]),
    ("feedback without id", "/v2/models/d/feedback", {"label": 1}, {}, 400, ["request_id"]),
]


@pytest.mark.parametrize("label, path, body, headers, status, words", CASES, ids=[c[0] for c in CASES])
def test_client_mistakes_are_4xx_naming_the_problem(
    make_app: Any, label: str, path: str, body: Any, headers: dict[str, str], status: int, words: list[str]
) -> None:
    app = make_app(("d", Doubler()), max_body_bytes=10_000)

    async def go() -> None:
        async with client(app) as c:
            kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
            r = await c.post(path, headers=headers, **kwargs)
            assert r.status_code == status, r.text
            error = r.json()["error"]
            for word in words:
                assert word in error, (word, error)

    run(go())


def test_unknown_route_and_method_keep_the_error_shape(make_app: Any) -> None:
    app = make_app(("d", Doubler()))

    async def go() -> None:
        async with client(app) as c:
            for r in (await c.get("/nowhere"), await c.get("/invocations"), await c.delete("/v2/models/d/infer")):
                assert r.status_code in (404, 405) and "error" in r.json()

    run(go())


def test_huge_body_is_413_declared_or_streamed(make_app: Any) -> None:
    app = make_app(("d", Doubler()), max_body_bytes=1000)
    big = split_body_of(5000)

    async def chunks() -> Any:
        for i in range(0, len(big), 256):
            yield big[i:i + 256]

    async def go() -> None:
        async with client(app) as c:
            r = await c.post("/invocations", content=big, headers={"content-type": "application/json"})
            assert r.status_code == 413 and "1000 bytes" in r.json()["error"]
            r = await c.post("/invocations", content=chunks(), headers={"content-type": "application/json"})
            assert r.status_code == 413

    run(go())
    with live_server(app) as url:  # through real HTTP too
        r = httpx.post(f"{url}/invocations", content=big, headers={"content-type": "application/json"})
        assert r.status_code == 413


def split_body_of(n: int) -> bytes:
    import orjson

    return orjson.dumps({"dataframe_split": {"columns": ["x"], "data": [[float(i)] for i in range(n)]}})


def test_model_failure_is_500_with_the_request_id_also_logged(make_app: Any, caplog: pytest.LogCaptureFixture) -> None:
    app = make_app(("d", Doubler()))

    async def go() -> None:
        async with client(app) as c:
            r = await c.post("/invocations", json={"instances": [666]}, headers={"x-request-id": "boom-1"})
            assert r.status_code == 500
            assert r.json()["request_id"] == "boom-1" and "boom-1" in r.json()["error"]
            assert "RuntimeError" in r.json()["error"]
            ok = await c.post("/invocations", json={"instances": [1]})
            assert ok.json() == {"predictions": [2.0]}  # the server survives

    with caplog.at_level(logging.ERROR, logger="conveyor.serving"):
        run(go())
    assert any("boom-1" in rec.getMessage() for rec in caplog.records)


def test_one_failing_request_does_not_fail_its_batch_mates(make_app: Any) -> None:
    import asyncio

    app = make_app(("d", Doubler(delay=0.02)), max_wait_ms=20)

    async def go() -> None:
        async with client(app) as c:
            values = [1, 2, 666, 4, 5]
            answers = await asyncio.gather(*(c.post("/invocations", json={"instances": [v]}) for v in values))
            for v, r in zip(values, answers, strict=True):
                if v == 666:
                    assert r.status_code == 500
                else:
                    assert r.json() == {"predictions": [2.0 * v]}

    run(go())


def test_nullable_column_accepts_nan(make_app: Any) -> None:
    from conveyor.entities import ColumnSpec, Signature

    class Nullable(Doubler):
        signature = Signature((ColumnSpec("x", "float64", nullable=True),))

    app = make_app(("n", Nullable()))

    async def go() -> None:
        async with client(app) as c:
            r = await c.post("/invocations", json={"dataframe_records": [{"x": None}, {"x": 1}]})
            assert r.status_code == 200
            first, second = r.json()["predictions"]
            assert math.isnan(first) if isinstance(first, float) else first is None
            assert second == 2.0

    run(go())


def test_slow_client_times_out_while_others_are_served(make_app: Any) -> None:
    app = make_app(("d", Doubler()), body_timeout_s=1.0)
    with live_server(app) as url:
        host, port = url.removeprefix("http://").split(":")
        slow = socket.create_connection((host, int(port)))
        slow.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"instan")
        for v in range(5):  # the slow client does not hold anyone up
            assert httpx.post(f"{url}/invocations", json={"instances": [v]}).json() == {"predictions": [2.0 * v]}
        slow.settimeout(10)
        deadline = time.monotonic() + 10
        answer = b""
        while b"\r\n\r\n" not in answer and time.monotonic() < deadline:
            answer += slow.recv(4096)
        slow.close()
        assert answer.startswith(b"HTTP/1.1 408"), answer[:100]


def test_model_failure_over_real_http(make_app: Any) -> None:
    app = make_app(("d", Doubler()))
    with live_server(app) as url:
        r = httpx.post(f"{url}/invocations", json={"instances": [666]}, headers={"x-request-id": "http-boom"})
        assert r.status_code == 500 and r.json()["request_id"] == "http-boom"
        assert httpx.post(f"{url}/invocations", json={"instances": [2]}).json() == {"predictions": [4.0]}


def test_nodelay_protocol_sets_the_socket_option() -> None:
    from conveyor.serving._nodelay import set_nodelay

    class Transport:  # the one method set_nodelay uses, over a real accepted TCP socket
        def __init__(self, sock: socket.socket) -> None:
            self.sock = sock

        def get_extra_info(self, name: str) -> Any:
            return self.sock if name == "socket" else None

    with socket.create_server(("127.0.0.1", 0)) as listener:
        # a bare socket() has proto 0, like the one uvicorn's workers inherit
        plain = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        plain.connect(listener.getsockname())
        accepted, _ = listener.accept()
        with plain, accepted:
            accepted.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
            set_nodelay(Transport(accepted))  # type: ignore[arg-type]
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
