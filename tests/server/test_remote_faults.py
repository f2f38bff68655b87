"""Remote mode under faults, against real servers on 127.0.0.1: a server that goes away
mid-run and comes back (every point arrives exactly once), a server killed mid-upload (no
partial artifact), and a fixed list of path-traversal payloads on every path-taking
endpoint of ``/api/v1`` (a 400, nothing read or written outside the store)."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from conveyor.entities import RunStatus
from conveyor.errors import UnsafePath
from fixtures.mlflow_client import init_project, start_server, stop_server
from fixtures.remote import ThreadServer, remote_tracker, serve


@pytest.fixture
def behind(tmp_path: Path) -> Any:
    """The server's own tracker over a SQLite store and local artifacts."""
    from conveyor.blobs import BlobStore
    from conveyor.settings import TrackingSettings
    from conveyor.store import Store
    from conveyor.tracking import Tracker

    store = Store.open(f"sqlite:///{tmp_path / 'server' / 'meta.db'}", create=True)
    blobs = BlobStore.open(tmp_path / "server" / "artifacts")
    blobs.init()
    tracker = Tracker(store, blobs, TrackingSettings())
    yield tracker
    tracker.close()


def test_server_stopped_mid_run_then_restarted_every_point_arrives_once(behind: Any, tmp_path: Path) -> None:
    from conveyor.server import create_app

    app = create_app(behind)
    server = ThreadServer(app).start()
    client = remote_tracker(server.url, tmp_path / "spool", flush_interval=60.0)
    client.http.retry_seconds = 0.5
    try:
        run = client.create_run("faults")
        client.log_params(run.id, {"lr": 0.1})
        for step in range(300):
            client.log_metric(run.id, "loss", 1 / (step + 1), step=step)
        client.flush()  # sent
        server.stop()
        for step in range(300, 700):
            client.log_metric(run.id, "loss", 1 / (step + 1), step=step)
        client.flush()  # the server is away: spooled, not raised, not lost
        assert client._spool.pending == 1
        for step in range(700, 800):
            client.log_metric(run.id, "loss", 1 / (step + 1), step=step)
        client.end_run(run.id)  # also spooled, behind the first batch
        assert client._spool.pending == 2
        assert behind.store.metrics.count  # the server's store has only the first 300 so far
        with behind.store.read() as conn:
            assert behind.store.metrics.count(conn, run.id) == 300
        server = ThreadServer(app, server.port).start()  # back on the same port
        # as if an earlier attempt of the first spooled batch had committed, its answer lost:
        record = __import__("json").loads(client._spool.path.read_text().splitlines()[0])
        first = httpx.post(f"{server.url}/api/v1/runs/{run.id}/batch", json=record["body"],
                           headers={"Idempotency-Key": record["key"]})
        assert first.json() == {"applied": True, "metrics": 400}
        report = client.sync()
        assert report.batches_skipped == 1 and report.batches_written == 1 and report.runs_ended == 1
        history = client.metric_history(run.id, "loss")
        assert [m.step for m in history] == list(range(800))  # each point once
        done = client.get_run(run.id)
        assert done.status is RunStatus.FINISHED and done.params == {"lr": "0.1"}
        assert client.sync().batches_written == 0  # nothing left to send
    finally:
        client.close()
        server.stop()


def test_a_dead_clients_spool_is_sent_by_the_next_one(behind: Any, tmp_path: Path) -> None:
    from conveyor.server import create_app

    app = create_app(behind)
    server = ThreadServer(app).start()
    spool = tmp_path / "spool"
    first = remote_tracker(server.url, spool, flush_interval=60.0)
    first.http.retry_seconds = 0.2
    run = first.create_run("faults")
    server.stop()
    for step in range(50):
        first.log_metric(run.id, "acc", step / 50, step=step)
    first.flush()
    # the process "dies": its spool file stays (the lock goes with the handle)
    first._spool._handle.close()
    first._spool._handle = None
    server = ThreadServer(app, server.port).start()
    try:
        second = remote_tracker(server.url, spool)
        report = second.sync()
        assert report.files == 1 and report.points_written == 50
        assert len(second.metric_history(run.id, "acc")) == 50
        assert second.sync().points_written == 0
        second.close()
    finally:
        server.stop()


def test_server_killed_mid_upload_leaves_no_partial_artifact(tmp_path: Path) -> None:
    root = init_project(tmp_path / "project")
    server = start_server(root)
    run_id = httpx.post(f"{server.url}/api/v1/runs", json={"experiment": "uploads"}).json()["id"]
    sent = threading.Event()

    def body() -> Any:
        for _ in range(4):
            yield b"x" * (1024 * 1024)
        sent.set()
        time.sleep(30)  # the rest never comes: the server is killed meanwhile
        yield b"y"

    def upload() -> None:
        try:
            httpx.put(f"{server.url}/api/v1/runs/{run_id}/artifacts/big.bin", content=body(), timeout=60)
        except httpx.HTTPError:
            pass

    thread = threading.Thread(target=upload, daemon=True)
    thread.start()
    assert sent.wait(30)
    time.sleep(0.5)  # the server has spooled the 4 MiB it got
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait(30)
    again = start_server(root)
    try:
        listed = httpx.get(f"{again.url}/api/v1/runs/{run_id}/artifacts").json()
        assert listed == []
        missing = httpx.get(f"{again.url}/api/v1/runs/{run_id}/artifacts/big.bin")
        assert missing.status_code == 404
        objects = [p for p in (root / ".conveyor" / "artifacts").rglob("*") if p.is_file()]
        assert all(p.stat().st_size != 4 * 1024 * 1024 for p in objects), objects
        # the same upload, whole, after the restart works
        whole = httpx.put(f"{again.url}/api/v1/runs/{run_id}/artifacts/big.bin", content=b"z" * 1000)
        assert whole.status_code == 201 and whole.json()["size"] == 1000
    finally:
        stop_server(again)


# -- path traversal ----------------------------------------------------------------------------------------
#: Raw request-target tails (sent byte for byte, no client-side normalisation), one per class of
#: MLflow's path CVEs: dot segments, backslashes, '#' and ';', percent- and double-encoding,
#: absolute paths, empty and foreign schemes, NUL.
PAYLOADS = [
    "..", "../outside.txt", "a/../../outside.txt", "a/./b", "a//b", "..%2foutside.txt",
    "%2e%2e/outside.txt", "%2E%2E%2Foutside.txt", "%252e%252e/outside.txt", "a%252f..%252f..%252fx",
    "..%5coutside.txt", "a%5c..%5c..%5cx", "a%23b", "a%3bb", "a;b", "%2fetc%2fpasswd", "/etc/passwd",
    "C:%5cwindows", "file:%2f%2f%2fetc%2fpasswd", ":%2fx", "s3:%2f%2fbucket%2fx", "a%00b", "%0d%0aX: y",
]


def _raw(url: str, method: str, target: str, body: bytes = b"", headers: dict[str, str] | None = None) -> int:
    """The status of one request sent as raw bytes (http.client and httpx would refuse or
    normalise some of the payloads)."""
    import socket

    host, port = url.removeprefix("http://").split(":")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}",
             "Connection: close", *[f"{k}: {v}" for k, v in (headers or {}).items()]]
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def test_traversal_payloads_are_400_on_every_path_taking_endpoint(behind: Any, tmp_path: Path) -> None:
    import json

    outside = tmp_path / "outside.txt"
    run = behind.create_run("paths", capture=False)
    blob = behind.blobs.put_bytes(b"abc")
    with serve(behind) as server:
        base = f"/api/v1/runs/{run.id}"
        for payload in PAYLOADS:
            manifest = json.dumps({"entries": [{"path": "f", "digest": str(blob.digest), "size": 3}]}).encode()
            statuses = {
                "PUT artifacts": _raw(server.url, "PUT", f"{base}/artifacts/{payload}", b"data"),
                "GET artifacts": _raw(server.url, "GET", f"{base}/artifacts/{payload}"),
                "POST folders": _raw(server.url, "POST", f"{base}/folders/{payload}", manifest,
                                     {"Content-Type": "application/json"}),
                "GET prefix": _raw(server.url, "GET", f"{base}/artifacts?prefix={payload}"),
            }
            for where, status in statuses.items():
                assert status == 400, f"{where} {payload!r} answered {status}"
        for bad in ["..", "../x", "a/../../x", "a\\b", "/etc/passwd", "a#b", "a;b", "%2e%2e/x", "C:\\x", "a/./b",
                    "a//b", "file:///etc/passwd"]:
            body = json.dumps({"entries": [{"path": bad, "digest": str(blob.digest), "size": 3}]}).encode()
            status = _raw(server.url, "POST", f"{base}/folders/ok", body, {"Content-Type": "application/json"})
            assert status == 400, f"folder entry {bad!r} answered {status}"
    assert not outside.exists()
    assert behind.list_artifacts(run.id) == []


def test_client_refuses_symlinks_and_writes_nothing_outside(behind: Any, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "w.bin").write_bytes(b"w")
    (folder / "link").symlink_to(secret)
    with serve(behind) as server:
        client = remote_tracker(server.url, tmp_path / "spool")
        run = client.create_run("paths")
        with pytest.raises(UnsafePath, match="symbolic link"):
            client.log_artifacts(run.id, folder)
        client.log_text(run.id, "hello", "notes.txt")
        target = tmp_path / "dest.txt"
        target.symlink_to(secret)
        with pytest.raises(UnsafePath):
            client.download_artifact(run.id, "notes.txt", target, force=True)
        assert secret.read_text() == "secret"
        for bad in ["../x.txt", "/etc/passwd", "a\\b"]:
            with pytest.raises(UnsafePath):
                client.log_text(run.id, "x", bad)
        client.close()


@pytest.mark.parametrize("store_kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_sixteen_clients_logging_at_once_lose_nothing(store_kind: str, tmp_path: Path,
                                                      request: pytest.FixtureRequest) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from conveyor.blobs import BlobStore
    from conveyor.settings import TrackingSettings
    from conveyor.store import Store
    from conveyor.tracking import Tracker

    url = f"sqlite:///{tmp_path / 'meta.db'}" if store_kind == "sqlite" else request.getfixturevalue("postgres_url")
    store = Store.open(url, create=True)
    blobs = BlobStore.open(tmp_path / "artifacts")
    blobs.init()
    behind = Tracker(store, blobs, TrackingSettings())

    def client(number: int) -> list[str]:
        tracker = remote_tracker(server.url, tmp_path / "spool", batch_size=50, capture_packages=False,
                                 capture_git=False)
        ids = []
        for r in range(4):
            run = tracker.create_run("crowd", name=f"c{number}-{r}")
            tracker.log_params(run.id, {"client": number, "run": r})
            for step in range(20):
                tracker.log_metrics(run.id, {f"m{k}": number + r + k + step for k in range(10)}, step=step)
            tracker.end_run(run.id)
            ids.append(run.id)
        tracker.close()
        return ids

    try:
        with serve(behind) as server, ThreadPoolExecutor(16) as pool:
            ids = [i for chunk in pool.map(client, range(16)) for i in chunk]
        assert len(set(ids)) == 64
        with store.read() as conn:
            for run_id in ids:
                assert store.metrics.count(conn, run_id) == 200  # 10 metrics x 20 steps, each once
        finished = behind.search_runs("crowd", output="runs", max_results=1000)
        assert len(finished) == 64 and {r.status for r in finished} == {RunStatus.FINISHED}
    finally:
        behind.close()


def test_a_spooled_end_of_a_run_ended_meanwhile_still_delivers_its_points(behind: Any, tmp_path: Path) -> None:
    from conveyor.server import create_app

    app = create_app(behind)
    server = ThreadServer(app).start()
    client = remote_tracker(server.url, tmp_path / "spool", flush_interval=60.0)
    client.http.retry_seconds = 0.2
    run = client.create_run("faults")
    server.stop()
    for step in range(30):
        client.log_metric(run.id, "loss", 1 / (step + 1), step=step)
    client.end_run(run.id)  # spooled with its points
    # meanwhile the server side ends it (as `conveyor runs gc-stale` would)
    behind.store.transaction(lambda conn: behind.store.runs.end(conn, run.id, RunStatus.KILLED, error="stale"))
    server = ThreadServer(app, server.port).start()
    try:
        report = client.sync()
        assert report.points_written == 30 and report.runs_ended == 0
        assert len(client.metric_history(run.id, "loss")) == 30
        assert client.get_run(run.id).status is RunStatus.KILLED
    finally:
        client.close()
        server.stop()


def test_the_token_setting_is_sent_and_a_refusal_is_access_denied(behind: Any, tmp_path: Path) -> None:
    from conveyor.server import Users, create_app
    from conveyor.settings import ServerSettings, TrackingSettings
    from conveyor.tracking._remote import AccessDenied, RemoteTracker

    users = Users(behind.store)
    users.add("ana")
    token = users.create_token("ana", "laptop")
    server = ThreadServer(create_app(behind, auth=True, users=users)).start()
    try:
        anonymous = RemoteTracker(ServerSettings(url=server.url, retry_seconds=0), TrackingSettings())
        with pytest.raises(AccessDenied, match="refused"):
            anonymous.create_run("secured")
        anonymous.close()
        wrong = RemoteTracker(ServerSettings(url=server.url, token="nope", retry_seconds=0), TrackingSettings())
        with pytest.raises(AccessDenied):
            wrong.list_experiments()
        wrong.close()
        client = RemoteTracker(ServerSettings(url=server.url, token=token, retry_seconds=0),
                               TrackingSettings(capture_packages=False))
        run = client.create_run("secured")
        client.log_metric(run.id, "m", 1.0)
        client.end_run(run.id)
        found = client.get_run(run.id)
        assert found.metrics == {"m": 1.0} and found.user == "ana"  # the server records who signed in
        client.close()
    finally:
        server.stop()
