"""Hardening of every answer of the server: Host allow-list (DNS rebinding), cross-origin
requests refused unless configured (CORS), security headers, body-size limits (413)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fixtures.asgi import SyncClient

from conveyor.server import Users, create_app
from conveyor.settings import ServerSettings

API = "/api/2.0/mlflow"
ART = "/api/2.0/mlflow-artifacts/artifacts"
HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}


def _client(tracker: Any, **server: Any) -> SyncClient:
    return SyncClient(create_app(tracker, server=ServerSettings(**server)))


def _has_security_headers(response: Any) -> None:
    for key, value in HEADERS.items():
        assert response.headers[key] == value, (key, response.status_code)
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp


def test_dns_rebinding_host_is_refused(tracker: Any) -> None:
    client = _client(tracker)
    try:
        for host in ("evil.example", "evil.example:5000", "127.0.0.1.evil.example", "", "localhost.evil"):
            response = client.post(f"{API}/experiments/create", json={"name": "x"}, headers={"host": host})
            assert response.status_code == 400, host
            assert "allowed_hosts" in response.json()["message"]
            _has_security_headers(response)
            v1 = client.get("/api/v1/info", headers={"host": host})
            assert v1.status_code == 400 and v1.json()["error"]["code"] == "INVALID"
        assert tracker.list_experiments() == []  # nothing changed
        for host in ("127.0.0.1:5000", "localhost", "LOCALHOST:80", "[::1]:5000"):
            assert client.get(f"{API}/experiments/search", headers={"host": host}).status_code == 200, host
        assert client.get("/health", headers={"host": "10.0.0.7:5000"}).text == "OK"  # probes use the pod IP
    finally:
        client.close()
    client = _client(tracker, allowed_hosts=("mlflow.example.com", "10.0.0.7:5000"))
    try:
        assert client.get(f"{API}/experiments/search", headers={"host": "mlflow.example.com"}).status_code == 200
        assert client.get(f"{API}/experiments/search", headers={"host": "10.0.0.7:5000"}).status_code == 200
        assert client.get(f"{API}/experiments/search", headers={"host": "10.0.0.7:6000"}).status_code == 400
        assert client.get(f"{API}/experiments/search", headers={"host": "evil.example"}).status_code == 400
    finally:
        client.close()


def test_cross_origin_requests_are_refused_unless_configured(tracker: Any) -> None:
    preflight = {"origin": "https://evil.example", "access-control-request-method": "POST",
                 "access-control-request-headers": "authorization, content-type"}
    client = _client(tracker)
    try:
        refused = client.request("OPTIONS", f"{API}/experiments/create", headers=preflight)
        assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers
        _has_security_headers(refused)
        # a "simple" cross-origin POST needs no preflight: it must not write either
        simple = client.post(f"{API}/experiments/create", content=b'{"name": "csrf"}',
                             headers={"origin": "https://evil.example", "content-type": "text/plain"})
        assert simple.status_code == 403 and "cors_origins" in simple.json()["message"]
        null = client.post(f"{API}/experiments/create", json={"name": "csrf"}, headers={"origin": "null"})
        assert null.status_code == 403
        assert tracker.list_experiments() == []
        same = client.post(f"{API}/experiments/create", json={"name": "ui"}, headers={"origin": "http://127.0.0.1"})
        assert same.status_code == 200  # the server's own UI
    finally:
        client.close()
    client = _client(tracker, cors_origins=("https://notebooks.example",))
    try:
        allowed = client.request("OPTIONS", f"{API}/experiments/create",
                                 headers={**preflight, "origin": "https://notebooks.example"})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://notebooks.example"
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        got = client.get(f"{API}/experiments/search", headers={"origin": "https://notebooks.example"})
        assert got.status_code == 200 and got.headers["access-control-allow-origin"] == "https://notebooks.example"
        assert client.request("OPTIONS", f"{API}/experiments/create", headers=preflight).status_code == 403
    finally:
        client.close()


def test_cors_preflight_needs_no_credentials_but_the_request_does(tracker: Any) -> None:
    users = Users(tracker.store)
    users.add("ana")
    token = users.create_token("ana", "t")
    client = SyncClient(create_app(tracker, auth=True, users=users,
                                   server=ServerSettings(cors_origins=("https://notebooks.example",))))
    try:
        origin = {"origin": "https://notebooks.example"}
        ok = client.request("OPTIONS", f"{API}/experiments/create",
                            headers={**origin, "access-control-request-method": "POST"})
        assert ok.status_code == 200
        assert client.post(f"{API}/experiments/create", json={"name": "x"}, headers=origin).status_code == 401
        assert client.post(f"{API}/experiments/create", json={"name": "x"},
                           headers={**origin, "authorization": f"Bearer {token}"}).status_code == 200
    finally:
        client.close()


def test_security_headers_on_every_answer(tracker: Any) -> None:
    users = Users(tracker.store)
    users.add("ana")
    token = users.create_token("ana", "t")
    client = SyncClient(create_app(tracker, auth=True, users=users))
    auth = {"authorization": f"Bearer {token}"}
    try:
        answers = [
            client.get("/health"),
            client.get(f"{API}/experiments/search", headers=auth),  # 200
            client.get(f"{API}/experiments/search"),  # 401
            client.get(f"{API}/experiments/get", params={"experiment_id": "999"}, headers=auth),  # 404
            client.get(f"{API}/experiments/get", params={"experiment_id": "x"}, headers=auth),  # 400
            client.get("/nowhere", headers=auth),
            client.get("/api/v1/info", headers=auth),
            client.get("/api/v1/openapi.json", headers=auth),
            client.get("/metrics", headers=auth),
        ]
        assert [a.status_code for a in answers] == [200, 200, 401, 404, 400, 404, 200, 200, 200]
        for answer in answers:
            _has_security_headers(answer)
    finally:
        client.close()


async def _chunks(size: int) -> AsyncIterator[bytes]:
    sent = 0
    while sent < size:
        part = min(64 * 1024, size - sent)
        sent += part
        yield b" " * part


def test_oversized_bodies_are_413_on_every_route(tracker: Any) -> None:
    client = _client(tracker, max_json_bytes=4096, max_upload_bytes=100_000)
    try:
        exp = client.post(f"{API}/experiments/create", json={"name": "e"}).json()["experiment_id"]
        run_id = client.post(f"{API}/runs/create", json={"experiment_id": exp}).json()["run"]["info"]["run_id"]
        big = {"run_id": run_id, "params": [{"key": f"k{i}", "value": "v" * 50} for i in range(100)]}
        declared = client.post(f"{API}/runs/log-batch", json=big)
        assert declared.status_code == 413 and declared.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
        _has_security_headers(declared)
        streamed = client.post(f"{API}/runs/log-batch", content=_chunks(10_000),
                               headers={"content-type": "application/json"})
        assert streamed.status_code == 413
        v1 = client.post("/api/v1/info", content=b"x" * 5000)
        assert v1.status_code == 413 and v1.json()["error"]["code"] == "TOO_LARGE"
        assert tracker.get_run(run_id).params == {}
        # uploads have their own, larger limit
        path = f"{ART}/{exp}/{run_id}/artifacts"
        assert client.put(f"{path}/small.bin", content=b"x" * 50_000).status_code == 200
        assert client.put(f"{path}/big.bin", content=b"x" * 100_001).status_code == 413
        assert client.put(f"{path}/streamed.bin", content=_chunks(200_000)).status_code == 413
        assert [a.path for a in tracker.list_artifacts(run_id)] == ["small.bin"]
        assert client.post(f"{API}/runs/log-batch", json={"run_id": run_id, "params": [{"key": "a", "value": "1"}]}
                           ).status_code == 200
    finally:
        client.close()


@pytest.mark.parametrize("bad", ["abc", "-1"])
def test_a_malformed_content_length_is_refused(tracker: Any, bad: str) -> None:
    client = _client(tracker)
    try:
        # httpx computes Content-Length itself: call the app with the raw scope
        app = client.client._transport.app  # type: ignore[attr-defined]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"{}", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": f"{API}/experiments/create", "raw_path": b"",
                 "query_string": b"", "root_path": "", "scheme": "http", "http_version": "1.1",
                 "headers": [(b"host", b"127.0.0.1"), (b"content-length", bad.encode())],
                 "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
        client.loop.run_until_complete(app(scope, receive, send))
        assert sent[0]["status"] == 413
    finally:
        client.close()
