"""Multipart (resumable) and presigned artifact transfers through /api/v1, against a real
server (uvicorn) over a local artifact store and over moto's S3 server.

A counting ASGI layer wraps the server's app: it records every request with the bytes it
carried in and out, which is how these tests see which parts were sent, and that presigned
transfers did not pass through the server.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import blake3
import httpx
import pytest
from fixtures.remote import ThreadServer, remote_tracker
from fixtures.s3 import s3_bucket_url, s3_server  # noqa: F401  (fixtures)

from conveyor.blobs import BlobStore, Digest
from conveyor.settings import ServerSettings, TrackingSettings
from conveyor.store import Store
from conveyor.tracking import Tracker
from conveyor.tracking._remote import Http, ServerUnreachable

MiB = 1024 * 1024
PART = 5 * MiB  # S3's smallest part; files of a few parts keep the tests fast


class Counting:
    """ASGI wrapper: (method, path, bytes in, bytes out) of every request."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[tuple[str, str, int, int]] = []
        self.before: Any = None  # called with (method, path) as a request arrives

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sizes = [0, 0]
        if self.before is not None:
            self.before(scope["method"], scope["path"])

        async def counted_receive() -> Any:
            message = await receive()
            sizes[0] += len(message.get("body", b""))
            return message

        async def counted_send(message: Any) -> None:
            sizes[1] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counted_receive, counted_send)
        finally:
            self.seen.append((scope["method"], scope["path"], sizes[0], sizes[1]))

    def parts_sent(self) -> list[int]:
        return [int(p.rsplit("/", 1)[1]) for m, p, _, _ in self.seen if m == "PUT" and "/parts/" in p]

    def bytes_in(self) -> int:
        return sum(s[2] for s in self.seen)

    def bytes_out(self) -> int:
        return sum(s[3] for s in self.seen)


@dataclass
class World:
    tracker: Tracker
    server: ThreadServer
    counting: Counting
    spool: Path
    run_id: str
    clients: list[Any] = field(default_factory=list)

    @property
    def api(self) -> str:
        return f"{self.server.url}/api/v1/runs/{self.run_id}"

    def remote(self, **server: Any) -> Any:
        client = remote_tracker(self.server.url, self.spool)
        client.server = ServerSettings(**{"url": self.server.url, "retry_seconds": 3.0, "timeout": 30.0,
                                          "multipart_threshold": MiB, "multipart_part_size": PART, **server})
        client.http = Http(client.server)
        self.clients.append(client)
        return client

    def staged(self) -> list[str]:
        """What is left in the staging area (local .tmp upload files, or S3 staging keys and uploads)."""
        backend = self.tracker.blobs._backend
        if hasattr(backend, "root") and isinstance(backend.root, Path):
            return sorted(p.name for p in (backend.root / ".tmp").glob("upload-*"))
        keys = [str(k) for k in backend.fs.find(f"{backend.root}/.uploads/")]
        uploads = backend._uploads(f"{backend._prefix}.uploads/")
        return keys + [u["Key"] for u in uploads]


def _file(folder: Path, size: int, seed: int = 1) -> Path:
    path = folder / f"data-{seed}.bin"
    path.write_bytes(os.urandom(size))
    return path


def _digest(data: bytes) -> str:
    return f"blake3:{blake3.blake3(data).hexdigest()}"


@pytest.fixture(params=["local", "s3"])
def medium(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _world(tmp_path: Path, blobs_url: str, endpoint: str | None, **server: Any) -> Iterator[World]:
    from conveyor.server import create_app

    store = Store.open(f"sqlite:///{tmp_path / 'meta.db'}", create=True)
    blobs = BlobStore.open(blobs_url, s3_endpoint_url=endpoint)
    blobs.init()
    tracker = Tracker(store, blobs, TrackingSettings(flush_interval=0.05))
    counting = Counting(create_app(tracker, server=ServerSettings(**server)))
    thread = ThreadServer(counting).start()
    world = World(tracker, thread, counting, tmp_path / "spool", tracker.create_run("uploads").id)
    try:
        yield world
    finally:
        for client in world.clients:
            client.close()
        thread.stop()
        tracker.close()


@pytest.fixture
def world(medium: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[World]:
    if medium == "local":
        yield from _world(tmp_path, str(tmp_path / "artifacts"), None)
    else:
        endpoint = request.getfixturevalue("s3_server")
        yield from _world(tmp_path, request.getfixturevalue("s3_bucket_url"), endpoint)


@pytest.fixture
def local_world(tmp_path: Path) -> Iterator[World]:
    yield from _world(tmp_path, str(tmp_path / "artifacts"), None)


@pytest.fixture
def s3_world(tmp_path: Path, s3_server: str, s3_bucket_url: str) -> Iterator[World]:  # noqa: F811
    yield from _world(tmp_path, s3_bucket_url, s3_server, presigned_urls=True, presigned_seconds=60)


def _start(world: World, data: bytes, path: str = "big.bin", **extra: Any) -> dict[str, Any]:
    answer = httpx.post(f"{world.api}/uploads", json={
        "path": path, "digest": _digest(data), "size": len(data), "part_size": PART, **extra})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def _part(world: World, upload: dict[str, Any], data: bytes, number: int, claimed: str | None = None) -> httpx.Response:
    chunk = data[(number - 1) * PART: number * PART]
    return httpx.put(f"{world.api}/uploads/{upload['id']}/parts/{number}", content=chunk, timeout=30,
                     headers={"X-Conveyor-Part-Digest": claimed or _digest(chunk)})


# -- multipart ---------------------------------------------------------------------------------------


def test_a_file_sent_in_parts_arrives_intact_and_verified(world: World, tmp_path: Path) -> None:
    source = _file(tmp_path, 2 * PART + 123_457)
    artifact = world.remote().log_artifact(world.run_id, source, "models")
    data = source.read_bytes()
    assert artifact.digest == _digest(data) and artifact.size == len(data)
    assert sorted(world.counting.parts_sent()) == [1, 2, 3]
    stored = world.tracker.get_artifact(world.run_id, "models/data-1.bin")
    assert world.tracker.blobs.read_bytes(Digest.parse(stored.digest)) == data  # verified on read too
    assert world.staged() == []
    # and it downloads again, through the server (no presigned URLs configured)
    out = world.remote().download_artifact(world.run_id, "models/data-1.bin", tmp_path / "back.bin")
    assert out.read_bytes() == data


def _folder(tmp_path: Path, big: bytes) -> Path:
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "weights.bin").write_bytes(big)
    (folder / "config.json").write_bytes(b"{}")
    return folder


def test_a_folder_sends_its_big_files_in_parts(world: World, tmp_path: Path) -> None:
    big = os.urandom(PART + 99)
    artifact = world.remote().log_artifacts(world.run_id, _folder(tmp_path, big), "model")
    assert artifact.is_dir and artifact.size == len(big) + 2
    assert sorted(world.counting.parts_sent()) == [1, 2]
    assert [a.path for a in world.tracker.list_artifacts(world.run_id)] == ["model"]  # one artifact, no stray file
    out = world.remote().download_artifact(world.run_id, "model", tmp_path / "back")
    assert (out / "sub" / "weights.bin").read_bytes() == big and (out / "config.json").read_bytes() == b"{}"
    assert world.staged() == []


def test_a_part_with_wrong_bytes_or_size_is_refused(world: World) -> None:
    data = os.urandom(PART + 1000)
    upload = _start(world, data)
    wrong = _part(world, upload, data, 1, claimed=_digest(b"something else"))
    assert wrong.status_code == 400 and "hash to" in wrong.json()["error"]["message"]
    short = httpx.put(f"{world.api}/uploads/{upload['id']}/parts/2", content=data[PART:-1],
                      headers={"X-Conveyor-Part-Digest": _digest(data[PART:-1])})
    assert short.status_code == 400 and "must be 1000 bytes" in short.json()["error"]["message"]
    beyond = httpx.put(f"{world.api}/uploads/{upload['id']}/parts/3", content=b"x",
                       headers={"X-Conveyor-Part-Digest": _digest(b"x")})
    assert beyond.status_code == 400
    status = httpx.get(f"{world.api}/uploads/{upload['id']}").json()
    assert status["parts"] == [] and status["missing"] == [1, 2]
    early = httpx.post(f"{world.api}/uploads/{upload['id']}/complete")
    assert early.status_code == 409 and "missing part(s) 1, 2" in early.json()["error"]["message"]
    assert _part(world, upload, data, 1).status_code == 200
    assert _part(world, upload, data, 2).status_code == 200
    done = httpx.post(f"{world.api}/uploads/{upload['id']}/complete", timeout=60)
    assert done.status_code == 201 and done.json()["digest"] == _digest(data)


def test_a_whole_file_that_does_not_match_its_digest_is_not_stored(world: World) -> None:
    data = os.urandom(PART + 10)
    answer = httpx.post(f"{world.api}/uploads", json={
        "path": "liar.bin", "digest": _digest(b"other bytes"), "size": len(data), "part_size": PART})
    upload = answer.json()
    assert _part(world, upload, data, 1).status_code == 200 and _part(world, upload, data, 2).status_code == 200
    done = httpx.post(f"{world.api}/uploads/{upload['id']}/complete", timeout=60)
    assert done.status_code == 400 and "hash to" in done.json()["error"]["message"]
    assert world.tracker.list_artifacts(world.run_id) == []
    assert not world.tracker.blobs.exists(Digest.parse(_digest(data)))
    assert world.staged() == []


class _DropsAfter(Http):
    """A client whose connection dies after ``parts`` part uploads (every later request fails)."""

    def __init__(self, settings: ServerSettings, parts: int) -> None:
        super().__init__(settings)
        self.left = parts

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if "/parts/" in path:
            if self.left == 0:
                raise ServerUnreachable("connection lost (test)")
            self.left -= 1
        return super().request(method, path, **kwargs)


def test_an_interrupted_upload_resumes_with_only_the_missing_parts(world: World, tmp_path: Path) -> None:
    source = _file(tmp_path, 3 * PART + 5)
    first = world.remote()
    first.http = _DropsAfter(first.server, parts=2)
    with pytest.raises(ServerUnreachable):
        first.log_artifact(world.run_id, source, "big.bin")
    assert sorted(world.counting.parts_sent()) == [1, 2]
    assert world.tracker.list_artifacts(world.run_id) == []
    # a new process (same spool folder) logs the same file again: parts 3 and 4 only
    artifact = world.remote().log_artifact(world.run_id, source, "big.bin")
    assert sorted(world.counting.parts_sent()) == [1, 2, 3, 4]
    assert artifact.digest == _digest(source.read_bytes())
    assert world.staged() == [] and list((world.spool / "uploads").iterdir()) == []


def test_a_part_cut_off_by_a_network_blink_is_retried(local_world: World, tmp_path: Path) -> None:
    """A real connection reset in the middle of part 2 (a TCP proxy between client and
    server goes down for a second): the client sends that part again, the file arrives intact."""
    from fixtures.proxy import TcpProxy

    world = local_world
    proxy = TcpProxy(("127.0.0.1", world.server.port))
    proxy.start()
    cut: list[Any] = []

    def blink(method: str, path: str) -> None:
        if method == "PUT" and path.endswith("/parts/2") and not cut:
            cut.append(proxy.outage(1.0))

    world.counting.before = blink
    try:
        client = world.remote(url=f"http://{proxy.address}", retry_seconds=15.0)
        source = _file(tmp_path, 2 * PART + 10)
        artifact = client.log_artifact(world.run_id, source)
        assert artifact.digest == _digest(source.read_bytes())
        assert cut and world.counting.parts_sent().count(2) >= 2
        assert sorted(set(world.counting.parts_sent())) == [1, 2, 3]
        assert world.staged() == []
    finally:
        for thread in cut:
            thread.join()
        proxy.stop()


def test_an_aborted_upload_leaves_no_artifact_and_no_parts(world: World) -> None:
    data = os.urandom(PART + 10)
    upload = _start(world, data)
    assert _part(world, upload, data, 1).status_code == 200
    assert world.staged() != []
    assert httpx.delete(f"{world.api}/uploads/{upload['id']}").status_code == 204
    assert world.staged() == []
    assert httpx.get(f"{world.api}/uploads/{upload['id']}").status_code == 404
    assert httpx.post(f"{world.api}/uploads/{upload['id']}/complete").status_code == 404
    assert world.tracker.list_artifacts(world.run_id) == []


def test_abandoned_uploads_are_cleaned_by_the_next_upload_and_by_gc(medium: str, tmp_path: Path,
                                                                    request: pytest.FixtureRequest) -> None:
    if medium == "local":
        worlds = _world(tmp_path, str(tmp_path / "artifacts"), None, upload_expiry_hours=0.0003)
    else:
        worlds = _world(tmp_path, request.getfixturevalue("s3_bucket_url"), request.getfixturevalue("s3_server"),
                        upload_expiry_hours=0.0003)
    world = next(worlds)
    try:
        data = os.urandom(PART + 10)
        abandoned = _start(world, data)
        assert _part(world, abandoned, data, 1).status_code == 200
        time.sleep(1.5)  # past its expiry (about 1 s)
        assert httpx.get(f"{world.api}/uploads/{abandoned['id']}").status_code == 404  # expired: removed
        left = _start(world, data)
        assert _part(world, left, data, 1).status_code == 200
        time.sleep(1.5)
        _start(world, b"tiny", "small.bin")  # the next upload sweeps the expired one
        assert not any(left["id"] in name for name in world.staged())
        # gc: whatever an upload left behind is removed once older than the grace period
        stray = _start(world, data, "stray.bin")
        assert _part(world, stray, data, 1).status_code == 200
        assert any(stray["id"] in name for name in world.staged())
        time.sleep(1.1)
        assert world.tracker.blobs.clean_tmp(0.5) > 0
        assert world.staged() == []
    finally:
        next(worlds, None)


# -- input and authorization ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["../escape.bin", "a/../../b.bin", "/etc/passwd", "a//b", "C:/x", "a\\..\\b"])
def test_traversal_in_names_is_refused(path: str, local_world: World) -> None:
    answer = httpx.post(f"{local_world.api}/uploads", json={"path": path, "digest": _digest(b"x"), "size": 1})
    assert answer.status_code == 400 and answer.json()["error"]["field"] == "path", answer.text
    assert local_world.staged() == []


def test_a_user_without_edit_gets_403_on_every_upload_route(tmp_path: Path) -> None:
    from conveyor.server import Users, create_app

    store = Store.open(f"sqlite:///{tmp_path / 'meta.db'}", create=True)
    blobs = BlobStore.open(tmp_path / "artifacts")
    blobs.init()
    tracker = Tracker(store, blobs, TrackingSettings(flush_interval=0.05))
    users = Users(store)
    users.add("ana")
    users.add("bob")
    tokens = {name: {"Authorization": f"Bearer {users.create_token(name, 't')}"} for name in ("ana", "bob")}
    server = ThreadServer(create_app(tracker, auth=True, users=users, server=ServerSettings())).start()
    try:
        base = f"{server.url}/api/v1"
        run = httpx.post(f"{base}/runs", json={"experiment": "ana-exp"}, headers=tokens["ana"]).json()
        api = f"{base}/runs/{run['id']}/uploads"
        data = os.urandom(2 * MiB)
        body = {"path": "m.bin", "digest": _digest(data), "size": len(data), "part_size": MiB}
        denied = httpx.post(api, json=body, headers=tokens["bob"])
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "FORBIDDEN"
        upload = httpx.post(api, json=body, headers=tokens["ana"]).json()
        part = {"X-Conveyor-Part-Digest": _digest(data[:MiB])}
        assert httpx.put(f"{api}/{upload['id']}/parts/1", content=data[:MiB],
                         headers={**tokens["bob"], **part}).status_code == 403
        assert httpx.get(f"{api}/{upload['id']}", headers=tokens["bob"]).status_code == 403
        assert httpx.post(f"{api}/{upload['id']}/complete", headers=tokens["bob"]).status_code == 403
        assert httpx.delete(f"{api}/{upload['id']}", headers=tokens["bob"]).status_code == 403
        assert httpx.get(f"{api}/{upload['id']}").status_code == 401  # no token at all
        assert httpx.put(f"{api}/{upload['id']}/parts/1", content=data[:MiB],
                         headers={**tokens["ana"], **part}).status_code == 200
        assert httpx.get(f"{api}/{upload['id']}", headers=tokens["ana"]).json()["missing"] == [2]
    finally:
        server.stop()
        tracker.close()


# -- presigned (S3) ------------------------------------------------------------------------------------


def test_presigned_upload_and_download_bypass_the_server(s3_world: World, tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="conveyor")
    world = s3_world
    source = _file(tmp_path, 6 * MiB)
    data = source.read_bytes()
    artifact = world.remote().log_artifact(world.run_id, source)
    assert artifact.path == "data-1.bin"
    assert artifact.digest == _digest(data)
    assert world.counting.parts_sent() == []
    assert world.counting.bytes_in() < 64 * 1024  # JSON only: the 6 MiB went to S3
    assert world.tracker.blobs.read_bytes(Digest.parse(artifact.digest)) == data
    assert world.staged() == []
    before = world.counting.bytes_out()
    out = world.remote().download_artifact(world.run_id, "data-1.bin", tmp_path / "back.bin")
    assert out.read_bytes() == data
    assert world.counting.bytes_out() - before < 64 * 1024
    assert world.remote().read_artifact(world.run_id, "data-1.bin") == data
    # what the server answered: a redirect to a short-lived signed URL, never the bytes
    answer = httpx.get(f"{world.api}/artifacts/data-1.bin")
    assert answer.status_code == 307 and "X-Amz-Signature=" in answer.headers["location"]
    assert "X-Amz-Expires=60" in answer.headers["location"]
    assert answer.headers["x-conveyor-digest"] == artifact.digest
    # a folder's big file goes straight to S3 too, and comes back from there
    before_in, before_out = world.counting.bytes_in(), world.counting.bytes_out()
    folder = world.remote().log_artifacts(world.run_id, _folder(tmp_path, data), "model")
    back = world.remote().download_artifact(world.run_id, folder.path, tmp_path / "model-back")
    assert (back / "sub" / "weights.bin").read_bytes() == data
    assert world.counting.bytes_in() - before_in < 64 * 1024 and world.counting.bytes_out() - before_out < 64 * 1024
    assert '"status":307' in caplog.text  # the access log saw the redirects ...
    assert "X-Amz-Signature" not in caplog.text  # ... and logged no presigned URL


def test_a_tampered_presigned_upload_is_refused_at_commit(s3_world: World) -> None:
    world = s3_world
    data, evil = os.urandom(MiB), os.urandom(MiB)
    upload = _start(world, data, "model.bin", presigned=True, sha256=hashlib.sha256(data).hexdigest())
    assert upload["mode"] == "presigned" and upload["url"].startswith("http")
    assert upload["headers"]["x-amz-checksum-sha256"]
    # moto does not enforce the signed checksum header (real S3 would refuse the PUT): the
    # server's own read-back at commit is what refuses it
    put = httpx.put(upload["url"], content=evil, headers=upload["headers"])
    assert put.status_code == 200
    done = httpx.post(f"{world.api}/uploads/{upload['id']}/complete", timeout=60)
    assert done.status_code == 400 and "hash to" in done.json()["error"]["message"], done.text
    assert world.tracker.list_artifacts(world.run_id) == []
    assert not world.tracker.blobs.exists(Digest.parse(_digest(evil)))
    assert not world.tracker.blobs.exists(Digest.parse(_digest(data)))
    assert world.staged() == []


def test_presigned_commit_before_the_put_is_a_conflict(s3_world: World) -> None:
    data = os.urandom(1000)
    upload = _start(s3_world, data, "x.bin", presigned=True, sha256=hashlib.sha256(data).hexdigest())
    early = httpx.post(f"{s3_world.api}/uploads/{upload['id']}/complete")
    assert early.status_code == 409 and "nothing was uploaded" in early.json()["error"]["message"]


def test_presigned_urls_are_off_by_default(world: World, tmp_path: Path) -> None:
    data = os.urandom(1000)
    upload = _start(world, data, "x.bin", presigned=True, sha256=hashlib.sha256(data).hexdigest())
    assert upload["mode"] == "parts" and upload["url"] is None
    world.tracker.log_bytes(world.run_id, data, "y.bin")
    assert httpx.get(f"{world.api}/artifacts/y.bin").status_code == 200


def test_known_bytes_are_not_sent_again(world: World, tmp_path: Path) -> None:
    source = _file(tmp_path, PART + 7)
    world.tracker.log_artifact(world.run_id, source, "first.bin")
    artifact = world.remote().log_artifact(world.run_id, source, "second.bin")
    assert world.counting.parts_sent() == [] and world.counting.bytes_in() < 64 * 1024
    assert artifact.digest == _digest(source.read_bytes())


def test_part_size_is_checked(world: World) -> None:
    answer = httpx.post(f"{world.api}/uploads", json={"path": "a", "digest": _digest(b""), "size": 10**12,
                                                      "part_size": PART})
    assert answer.status_code == 400 and answer.json()["error"]["field"] == "part_size"
    too_big = httpx.post(f"{world.api}/uploads", json={"path": "a", "digest": _digest(b""), "size": 1,
                                                       "part_size": 65 * MiB})
    assert too_big.status_code == 400
