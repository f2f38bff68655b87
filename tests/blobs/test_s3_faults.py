"""Issue 12, items 5 and 6: S3 failures are conveyor errors naming the real cause (exit code 4,
no traceback), and many objects move concurrently and correctly.

Every case runs against moto's real S3 server on 127.0.0.1: the session server of
``fixtures/s3.py``, a private one the test stops, one started with authentication enforced,
a closed port, and a port that accepts connections but never answers.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conveyor.blobs import BlobStore, Digest
from conveyor.errors import NotFound, StorageError

pytestmark = pytest.mark.s3

runner = CliRunner()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bucket(endpoint: str) -> str:
    import boto3

    name = f"faults-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture
def private_server(s3_server: str) -> Iterator[Any]:
    """A moto server of this test's own, which the test may stop (env from the session fixture)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and never answers (a hung endpoint)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


@pytest.fixture
def auth_server(s3_server: str, tmp_path: Path) -> Iterator[str]:
    """moto with authentication enforced (a separate process: the setting is read at import)."""
    port = _free_port()
    env = os.environ | {"INITIAL_NO_AUTH_ACTION_COUNT": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.fail("moto (auth enforced) did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _open(url: str, endpoint: str, **kwargs: Any) -> BlobStore:
    return BlobStore.open(url, s3_endpoint_url=endpoint, s3_max_attempts=1, **kwargs)


def test_closed_port_is_unreachable_not_a_missing_bucket(s3_server: str) -> None:
    endpoint = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(StorageError) as caught:
        _open("s3://some-bucket/x", endpoint).init()
    message = str(caught.value)
    assert "cannot reach the S3 endpoint" in message and endpoint in message
    assert "does not exist" not in message
    assert "s3_endpoint_url" in (caught.value.hint or "")


def test_silent_endpoint_times_out(s3_server: str, silent_port: int) -> None:
    store = _open("s3://b/x", f"http://127.0.0.1:{silent_port}", s3_connect_timeout=1, s3_read_timeout=1)
    outcome: list[BaseException] = []
    worker = threading.Thread(target=lambda: outcome.append(pytest.raises(StorageError, store.init).value))
    worker.start()
    worker.join(timeout=120)  # a hang detector, not a speed assertion
    assert not worker.is_alive(), "init still waiting on a silent endpoint"
    assert "cannot reach" in str(outcome[0]) and "timeout" in str(outcome[0]).lower()


def test_missing_bucket_is_named(s3_server: str) -> None:
    with pytest.raises(StorageError, match="bucket 'no-such-bucket-here' .* does not exist"):
        _open("s3://no-such-bucket-here/x", s3_server).init()


def test_wrong_credentials_are_named(auth_server: str) -> None:
    with pytest.raises(StorageError) as caught:
        _open("s3://any-bucket/x", auth_server).init()
    assert "refused the S3 credentials" in str(caught.value)
    assert "InvalidAccessKeyId" in str(caught.value)


def test_missing_credentials_are_named(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask an instance-metadata address
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    with pytest.raises(StorageError, match="no S3 credentials"):
        _open("s3://any-bucket/x", s3_server).init()


@pytest.mark.slow
def test_server_stopped_mid_work(private_server: Any, tmp_path: Path) -> None:
    host, port = private_server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    store = _open(f"s3://{_bucket(endpoint)}/x", endpoint)
    store.init()
    blob = store.put_bytes(b"before the outage")
    files = []
    for i in range(200):
        (tmp_path / f"f{i}").write_bytes(f"file {i}".encode())
        files.append(tmp_path / f"f{i}")
    stopped = threading.Event()

    def stop_after_first(done: int, total: int) -> None:
        if not stopped.is_set():
            stopped.set()
            private_server.stop()

    with pytest.raises(StorageError, match="cannot reach the S3 endpoint"):
        store.put_files(files, progress=stop_after_first)
    for call in (lambda: store.read_bytes(blob.digest), lambda: store.exists(blob.digest),
                 lambda: store.get_file(blob.digest, tmp_path / "out")):
        with pytest.raises(StorageError, match="cannot reach"):
            call()
    private_server.start()  # nothing half-written became visible: what is there verifies
    for digest in store.iter_digests():
        assert store.verify(digest)


def reset_defaults() -> None:
    from conveyor.data._context import reset_defaults as reset

    reset()


def _cli(*args: str, env: dict[str, str]) -> Any:
    from conveyor.cli import app

    return runner.invoke(app, list(args), env=env)


@pytest.mark.slow
def test_cli_exit_code_4_without_traceback(project: Path, s3_server: str) -> None:
    (project / "data").mkdir()
    for i in range(20):
        (project / "data" / f"{i}.txt").write_text(str(i))
    cases = {
        "unreachable": {"CONVEYOR_STORE_ARTIFACTS_URL": "s3://b/x",
                        "CONVEYOR_STORE_S3_ENDPOINT_URL": f"http://127.0.0.1:{_free_port()}"},
        "no bucket": {"CONVEYOR_STORE_ARTIFACTS_URL": "s3://missing-bucket-1/x",
                      "CONVEYOR_STORE_S3_ENDPOINT_URL": s3_server},
    }
    for name, env in cases.items():
        env = env | {"CONVEYOR_STORE_S3_MAX_ATTEMPTS": "1"}
        for args in (("data", "add", "data", "--name", "d"), ("doctor", "--quick"), ("gc",)):
            result = _cli(*args, env=env)
            reset_defaults()
            assert result.exit_code == 4, (name, args, result.output)
            assert "Traceback" not in result.output and "error:" in result.output, (name, args)


@pytest.mark.slow
def test_many_objects_move_concurrently_and_correctly(s3_server: str, tmp_path: Path) -> None:
    store = _open(f"s3://{_bucket(s3_server)}/many", s3_server, s3_max_concurrency=16)
    store.init()
    src = tmp_path / "src"
    for i in range(300):
        folder = src / f"d{i % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i}.bin").write_bytes(os.urandom(i * 37 % 3000) + f"{i}".encode())
    (src / "dup1.bin").write_bytes(b"same")
    (src / "dup2.bin").write_bytes(b"same")
    (src / "big.bin").write_bytes(os.urandom(9 * 1024 * 1024))  # a multipart upload beside them
    tree = store.put_tree(src)
    manifest = store.read_manifest(tree.digest)
    assert len(manifest.entries) == 303
    listed = store.sizes()
    assert all(listed[e.digest][0] == e.size for e in manifest.entries)
    assert len(listed) == 303  # 302 distinct files (the two identical ones are one object) + the manifest
    assert store.exists_many([e.digest for e in manifest.entries]) == {e.digest for e in manifest.entries}
    out = store.get_tree(tree.digest, tmp_path / "out")
    for entry in manifest.entries:
        assert (out / entry.path).read_bytes() == (src / entry.path).read_bytes()
    again = store.put_tree(src)  # everything exists: nothing uploaded, same manifest
    assert again == tree
    absent = Digest.parse("blake3:" + "0" * 64)
    assert store.exists_many([absent, *[e.digest for e in manifest.entries[:20]]]) == {
        e.digest for e in manifest.entries[:20]
    }
    with pytest.raises(NotFound):
        store.read_bytes(absent)


def test_incomplete_uploads_are_cleaned(s3_server: str, tmp_path: Path) -> None:
    import boto3

    bucket = _bucket(s3_server)
    store = _open(f"s3://{bucket}/up", s3_server)
    store.init()
    blob = store.put_bytes(b"complete")
    client = boto3.client("s3", endpoint_url=s3_server)
    young_orphan = "up/" + "ab/" + "c" * 62  # a writer that died a moment ago; object never completed
    client.create_multipart_upload(Bucket=bucket, Key=young_orphan)
    redundant = f"up/{blob.digest.hex[:2]}/{blob.digest.hex[2:]}"  # its object exists: provably useless
    client.create_multipart_upload(Bucket=bucket, Key=redundant)
    assert store.leftovers(0) == (2, 0)
    # moto reports a fixed 2010 start time for every upload, so "young" here means a grace
    # period longer than that: only the redundant upload goes, whatever its age
    assert store.clean_tmp(1e10) == 1
    keys = [u["Key"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
    assert keys == [young_orphan]
    assert store.clean_tmp(0) == 1  # past the grace period
    # the next multipart write of a key aborts earlier incomplete uploads of the same key
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(9 * 1024 * 1024))
    with open(big, "rb") as stream:
        from conveyor.blobs._digest import hash_stream

        digest = hash_stream(stream).digest
    key = f"up/{digest.hex[:2]}/{digest.hex[2:]}"
    client.create_multipart_upload(Bucket=bucket, Key=key)
    store.put_file(big)
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert store.verify(digest)


def test_listings_split_crowded_prefixes(s3_server: str) -> None:
    store = _open(f"s3://{_bucket(s3_server)}/split", s3_server)
    store.init()
    blobs = [store.put_bytes(f"object {i}".encode()) for i in range(60)]
    store._backend.page_size = 2  # type: ignore[attr-defined]  # every prefix needs several pages
    listed = store.sizes()
    assert set(listed) == {b.digest for b in blobs}
    assert all(listed[b.digest][0] == b.size for b in blobs)
    absent = Digest.parse("blake3:" + "f" * 64)
    assert store.exists_many([absent, *(b.digest for b in blobs)]) == {b.digest for b in blobs}
