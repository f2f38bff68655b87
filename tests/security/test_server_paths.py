"""Path traversal on the server's artifact API: a fixed list of payloads, one per class of
MLflow's path-traversal CVEs (``..``, ``\\``, ``#``, ``;``, percent- and double-encoding,
absolute paths, empty and foreign schemes, NUL). Each must be a 400 in MLflow's error shape,
and nothing may be read from or written outside the artifact store.
"""

from __future__ import annotations

import asyncio
import http.client
import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from fixtures.mlflow_client import live_server  # noqa: F401  (the real server process, a fixture)

SECRET = b"top secret, outside the store"
UPLOAD, LIST = "/api/2.0/mlflow-artifacts/artifacts/", "/api/2.0/mlflow-artifacts/artifacts?path="

# {RUN} is a real run's prefix "<experiment id>/<run id>/artifacts"
PAYLOADS = [
    "{RUN}/../../../../secret.txt",
    "{RUN}/a/../../secret.txt",
    "{RUN}/..%2F..%2F..%2Fsecret.txt",
    "{RUN}/%2e%2e/%2e%2e/%2e%2e/secret.txt",
    "{RUN}/%2E%2E%2F%2E%2E%2Fsecret.txt",
    "{RUN}/%252e%252e%252f%252e%252e%252fsecret.txt",
    "{RUN}/%25252e%25252e/secret.txt",
    "{RUN}/..%5c..%5c..%5csecret.txt",
    "{RUN}/a%5csecret.txt",
    "{RUN}/a%23/../../secret.txt",
    "{RUN}/x%23frag",
    "{RUN}/a;/../../secret.txt",
    "{RUN}/x;jsessionid=1",
    "{RUN}/./secret.txt",
    "{RUN}//etc/passwd",
    "{RUN}/%2Fetc%2Fpasswd",
    "/etc/passwd",
    "%2Fetc%2Fpasswd",
    "{RUN}/file:///etc/passwd",
    "{RUN}/:/etc/passwd",
    "{RUN}/C:/Windows/win.ini",
    "{RUN}/secret%00.txt",
    "{RUN}/a/b/",
    "1/../{RUNID}/artifacts/x.txt",
    "../{RUN}/x.txt",
]


@pytest.fixture
def setup(tracker: Any, tmp_path: Path) -> tuple[Any, str, Path]:
    from conveyor.server import create_app

    (tmp_path / "secret.txt").write_bytes(SECRET)
    run = tracker.create_run("paths", capture=False)
    return create_app(tracker), run.id, tmp_path


def _call(app: Any, method: str, raw: str, body: bytes = b"") -> tuple[int, bytes]:
    """One request as uvicorn hands it over: ``path`` is the raw path percent-decoded once."""
    parsed = urlsplit(raw)
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": unquote(parsed.path), "raw_path": parsed.path.encode(), "query_string": parsed.query.encode(),
             "root_path": "", "headers": [(b"host", b"127.0.0.1"), (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 1), "server": ("testserver", 80)}
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.Event().wait()  # the client stays connected until the answer is sent
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() and "artifacts" not in p.relative_to(root).parts[:1]}


def _assert_refused(status: int, body: bytes, payload: str) -> None:
    assert status == 400, (payload, status, body)
    assert json.loads(body)["error_code"] == "INVALID_PARAMETER_VALUE", body
    assert SECRET not in body


@pytest.mark.parametrize("payload", PAYLOADS)
def test_traversal_payloads_are_400_and_touch_nothing(setup: tuple[Any, str, Path], tracker: Any, payload: str) -> None:
    app, run_id, root = setup
    exp_id = tracker.get_run(run_id).experiment_id
    path = payload.replace("{RUN}", f"{exp_id}/{run_id}/artifacts").replace("{RUNID}", run_id)
    before = _files(root)
    _assert_refused(*_call(app, "PUT", UPLOAD + path, b"pwned"), payload)
    _assert_refused(*_call(app, "GET", UPLOAD + path), payload)
    _assert_refused(*_call(app, "GET", LIST + path), payload)
    assert _files(root) == before  # nothing written outside the store (nor a stray temp file)
    assert tracker.list_artifacts(run_id) == []
    assert (root / "secret.txt").read_bytes() == SECRET


def test_a_safe_path_still_works(setup: tuple[Any, str, Path], tracker: Any) -> None:
    app, run_id, _ = setup
    exp_id = tracker.get_run(run_id).experiment_id
    assert _call(app, "PUT", f"{UPLOAD}{exp_id}/{run_id}/artifacts/dir/file%20name.txt", b"fine")[0] == 200
    assert _call(app, "GET", f"{UPLOAD}{exp_id}/{run_id}/artifacts/dir/file%20name.txt") == (200, b"fine")
    assert [a.path for a in tracker.list_artifacts(run_id)] == ["dir/file name.txt"]


@pytest.mark.slow
def test_traversal_over_a_real_socket(live_server: Any) -> None:
    """The same payloads through uvicorn itself (its own decoding), not a hand-made scope."""
    tracker = live_server.tracker()
    try:
        run = tracker.create_run("paths", capture=False)
        prefix = f"{run.experiment_id}/{run.id}/artifacts"
        host, port = live_server.url.removeprefix("http://").split(":")
        for payload in PAYLOADS:
            path = payload.replace("{RUN}", prefix).replace("{RUNID}", run.id)
            for method, url, body in (("PUT", UPLOAD + path, b"pwned"), ("GET", UPLOAD + path, None), ("GET", LIST + path, None)):
                conn = http.client.HTTPConnection(host, int(port), timeout=30)
                conn.request(method, url, body=body)
                response = conn.getresponse()
                _assert_refused(response.status, response.read(), payload)
                conn.close()
        assert tracker.list_artifacts(run.id) == []
    finally:
        tracker.close()
