"""Remote mode's own guarantees for conveyor.data: who may add and download, which objects a
download may reach, bad input refused with the one error shape, an unchanged add that
creates nothing, and an add cut off by a stopped server that leaves no version."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import conveyor.data as cd
from conveyor.errors import InvalidInput, NotFound
from fixtures.proxy import proxied, pg_proxy  # noqa: F401 - fixtures
from fixtures.remote import ThreadServer, remote_tracker


@pytest.fixture
def behind(store: Any, tmp_path: Path) -> Iterator[Any]:
    """The server's own tracker: the metadata store and a local artifact folder."""
    from conveyor.blobs import BlobStore
    from conveyor.settings import TrackingSettings
    from conveyor.tracking import Tracker

    blobs = BlobStore.open(tmp_path / "server-artifacts")
    blobs.init()
    opened = Tracker(store, blobs, TrackingSettings())
    yield opened
    opened.flush()


@pytest.fixture
def open_server(behind: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ThreadServer]:
    """A server without authentication (loopback), the working directory a scratch folder."""
    from conveyor.server import create_app

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    server = ThreadServer(create_app(behind)).start()
    yield server
    server.stop()


def _client(url: str, tmp_path: Path, token: str | None = None) -> Any:
    from conveyor.settings import ServerSettings, TrackingSettings
    from conveyor.tracking._remote import RemoteTracker

    return RemoteTracker(ServerSettings(url=url, token=token, retry_seconds=3.0, timeout=10.0),
                         TrackingSettings(capture_packages=False), spool_dir=tmp_path / "spool")


def _folder(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert set(body) == {"code", "message", "field"} and body["message"]
    return body


def test_permissions_edit_to_add_read_to_download(behind: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from conveyor.server import Users, create_app
    from conveyor.settings import ServerSettings
    from conveyor.tracking._remote import AccessDenied

    monkeypatch.chdir(tmp_path)
    users = Users(behind.store)
    for name in ("ana", "bob", "eve"):
        users.add(name)
    tokens = {name: users.create_token(name, "t") for name in ("ana", "bob", "eve")}
    server = ThreadServer(create_app(behind, auth=True, users=users,
                                     server=ServerSettings(default_role="none"))).start()
    clients = {name: _client(server.url, tmp_path / name, tokens[name]) for name in tokens}
    try:
        data = _folder(tmp_path / "secret", {"a.txt": "A", "sub/b.txt": "B"})
        made = cd.add(data, name="secret", tracker=clients["ana"])  # a new name: ana creates it and manages it
        assert made.created and made.ref == "data:/secret@1"
        users.grant("bob", "data", "secret", "read", by="ana")
        out = cd.get("secret@1", tmp_path / "bob-copy", tracker=clients["bob"])
        assert (out / "sub" / "b.txt").read_text() == "B"
        (data / "c.txt").write_text("C")
        with pytest.raises(AccessDenied):  # read is not edit
            cd.add(data, name="secret", tracker=clients["bob"])
        with pytest.raises(AccessDenied):
            cd.get("secret@1", tmp_path / "eve-copy", tracker=clients["eve"])
        assert not (tmp_path / "eve-copy").exists()
        with pytest.raises(AccessDenied):
            cd.log_input("secret@1", "0" * 32, tracker=clients["eve"])
        # eve's raw requests: 403 in the one error shape, whatever the route
        headers = {"authorization": f"Bearer {tokens['eve']}"}
        digest = made.digest
        for method, path, kwargs in (
            ("GET", f"/api/v1/datasets/secret/blobs/{digest}?version=1", {}),
            ("POST", "/api/v1/datasets/secret/blobs/missing", {"json": {"digests": [digest]}}),
            ("PUT", f"/api/v1/datasets/secret/blobs/{digest}", {"content": b"x"}),
            ("POST", "/api/v1/datasets/secret/versions", {"json": {"digest": digest, "kind": "folder"}}),
            ("POST", "/api/v1/lineage/edges", {"json": {"upstream": {"kind": "step", "id": "s"},
                                                        "downstream": {"kind": "dataset_version", "id": "secret@1"},
                                                        "relation": "output"}}),
        ):
            assert _error(httpx.request(method, server.url + path, headers=headers, **kwargs), 403)["code"] == "FORBIDDEN"
        assert [v.version for v in cd.versions("secret", tracker=clients["ana"])] == [1]
    finally:
        for client in clients.values():
            client.close()
        server.stop()


def test_a_download_reaches_only_objects_of_the_version_it_names(open_server: ThreadServer, tmp_path: Path) -> None:
    client = _client(open_server.url, tmp_path)
    try:
        mine = cd.add(_folder(tmp_path / "mine", {"m.txt": "mine"}), name="mine", tracker=client)
        theirs = cd.add(_folder(tmp_path / "theirs", {"t.txt": "theirs"}), name="theirs", tracker=client)
        base = open_server.url + "/api/v1/datasets"
        from conveyor.blobs import Digest

        def entry(version: Any) -> str:
            from conveyor.data._context import blobs_for

            manifest = blobs_for(client, version.name, version.version).read_manifest(Digest.parse(version.digest))
            return str(manifest.entries[0].digest)

        assert httpx.get(f"{base}/mine/blobs/{entry(mine)}?version=1").content == b"mine"
        assert httpx.head(f"{base}/mine/blobs/{mine.digest}").headers["content-length"] != "0"
        for digest in (entry(theirs), theirs.digest):  # stored, but not this data set's
            _error(httpx.get(f"{base}/mine/blobs/{digest}?version=1"), 404)
            _error(httpx.get(f"{base}/mine/blobs/{digest}"), 404)
        _error(httpx.get(f"{base}/mine/blobs/{entry(mine)}"), 404)  # an entry needs its version named
        _error(httpx.get(f"{base}/mine/blobs/{mine.digest}?version=9"), 404)
        assert _error(httpx.get(f"{base}/mine/blobs/not-a-digest"), 400)["field"] == "digest"
    finally:
        client.close()


def test_bad_uploads_and_traversal_are_refused(open_server: ThreadServer, behind: Any, tmp_path: Path) -> None:
    import json

    from conveyor.blobs._digest import hash_bytes

    base = open_server.url + "/api/v1/datasets"
    payload = b"payload"
    good = hash_bytes(payload)
    wrong = hash_bytes(b"other bytes")
    assert _error(httpx.put(f"{base}/x/blobs/{wrong}", content=payload), 400)["field"] == "body"
    assert not behind.blobs.exists(wrong) and not behind.blobs.exists(good)  # nothing stored
    assert httpx.put(f"{base}/x/blobs/{good}", content=payload).json()["digest"] == str(good)
    assert httpx.post(f"{base}/x/blobs/missing", json={"digests": [str(good), str(wrong)]}).json() == {
        "missing": [str(wrong)]}
    _error(httpx.post(f"{base}/x/blobs/missing", json={"digests": ["../../etc/passwd"]}), 400)
    # a hostile manifest: uploaded fine (bytes are bytes), refused as a version
    for bad in ("../escape.txt", "/etc/owned", "a/../../b"):
        doc = {"media_type": "application/vnd.conveyor.manifest+json", "version": 1,
               "entries": [{"path": bad, "digest": str(good), "size": len(payload)}]}
        data = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
        digest = hash_bytes(data)
        assert httpx.put(f"{base}/x/blobs/{digest}", content=data).status_code == 201
        _error(httpx.post(f"{base}/x/versions", json={"digest": str(digest), "kind": "folder"}), 400)
    # data set names that try to leave their place, and bodies that do not fit
    for name in ("..", "..%2Fetc", "a%00b", "x y"):
        assert httpx.post(f"{base}/{name}/versions", json={"digest": str(good), "kind": "file"}).status_code in (400, 404)
    _error(httpx.post(f"{base}/x/versions", json={"digest": str(good), "kind": "file", "format": "csv"}), 400)
    _error(httpx.post(f"{base}/x/versions", json={"digest": str(wrong), "kind": "file"}), 400)  # never uploaded
    _error(httpx.post(f"{base}/x/versions", json={"digest": str(good), "kind": "movie"}), 400)
    _error(httpx.post(f"{base}/x/versions", json={"digest": str(good), "kind": "file", "size": 1}), 400)
    with pytest.raises(NotFound):
        cd.get_version("x", tracker=behind)  # none of it made a version
    client = _client(open_server.url, tmp_path)
    try:
        with pytest.raises(InvalidInput):
            cd.add(tmp_path, name="../x", tracker=client)
    finally:
        client.close()


def test_a_file_larger_than_a_json_body_streams_up_and_down(open_server: ThreadServer, tmp_path: Path) -> None:
    import os

    client = _client(open_server.url, tmp_path)
    try:
        big = tmp_path / "big.bin"
        big.write_bytes(os.urandom(20 * 1024 * 1024))  # over [server] max_json_bytes (16 MiB)
        added = cd.add(big, name="big", tracker=client)
        assert (added.kind, added.size) == ("file", 20 * 1024 * 1024)
        out = cd.get("big@1", tmp_path / "copy.bin", tracker=client)
        assert out.read_bytes() == big.read_bytes()
    finally:
        client.close()


def test_an_add_refused_after_its_uploads_can_be_made_again(open_server: ThreadServer, tmp_path: Path) -> None:
    """The objects and the stat cache's folder entry outlive a refused record request; the
    next add finds the manifest no version names yet, and stores it as a version."""
    client = _client(open_server.url, tmp_path)
    try:
        data = _folder(tmp_path / "set", {"a.txt": "a", "b/c.txt": "c"})
        with pytest.raises(NotFound):  # no such run: refused after every object went up
            cd.add(data, name="set", tracker=client, run_id="f" * 32)
        with pytest.raises(NotFound):
            cd.get_version("set", tracker=client)
        made = cd.add(data, name="set", tracker=client)
        assert (made.version, made.created, made.file_count) == (1, True, 2)
    finally:
        client.close()


def test_an_unchanged_add_creates_nothing(open_server: ThreadServer, behind: Any, tmp_path: Path) -> None:
    client = _client(open_server.url, tmp_path)
    try:
        data = _folder(tmp_path / "imgs", {f"f{i}.txt": str(i) for i in range(20)})
        first = cd.add(data, name="imgs", tracker=client)
        objects = set(behind.blobs.iter_digests())
        again = cd.add(data, name="imgs", tracker=client)
        assert (again.version, again.created, again.digest) == (1, False, first.digest)
        assert set(behind.blobs.iter_digests()) == objects
        assert [v.version for v in cd.versions("imgs", tracker=behind)] == [1]
        # the same record request sent twice (an answer lost): the receipt, not a second version
        body = {"digest": first.digest, "kind": "folder", "source": "x"}
        headers = {"Idempotency-Key": "k1"}
        (data / "new.txt").write_text("new")
        second = cd.add(data, name="imgs", tracker=client)
        assert (second.version, second.created) == (2, True)
        url = open_server.url + "/api/v1/datasets/imgs/versions"
        assert httpx.post(url, json=body, headers=headers).status_code == 201  # back to the old content
        replay = httpx.post(url, json=body, headers=headers)
        assert replay.status_code == 201 and replay.json()["version"] == 3
        assert [v.version for v in cd.versions("imgs", tracker=behind)] == [1, 2, 3]
    finally:
        client.close()


def test_a_server_stopped_mid_add_leaves_no_version(behind: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from conveyor.server import create_app
    from conveyor.tracking._remote import ServerUnreachable

    monkeypatch.chdir(tmp_path)
    server = ThreadServer(create_app(behind)).start()
    client = remote_tracker(server.url, tmp_path / "spool")
    data = _folder(tmp_path / "big", {f"d{i % 4}/f{i}.txt": f"file {i}" * 50 for i in range(200)})
    stopped: list[bool] = []

    def stop_once(done: int, total: int) -> None:
        if not stopped:
            stopped.append(True)
            server.stop()  # between uploads: the rest find no server

    try:
        with pytest.raises(ServerUnreachable):
            cd.add(data, name="big", tracker=client, progress=stop_once)
        assert stopped
        with pytest.raises(NotFound):
            cd.get_version("big", tracker=behind)  # uploads happened, the version row did not
        assert 0 < sum(1 for _ in behind.blobs.iter_digests()) < 201
        server.start()
        done = cd.add(data, name="big", tracker=client)  # sends only what is missing
        assert (done.version, done.created, done.file_count) == (1, True, 200)
        out = cd.get("big", tmp_path / "out", tracker=client)
        assert (out / "d3" / "f7.txt").read_text() == "file 7" * 50
    finally:
        client.close()
        server.stop()


def test_a_server_killed_mid_add_leaves_no_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGKILL, not a graceful stop: the server process dies between uploads."""
    import subprocess
    import sys

    from conveyor.settings import Settings
    from conveyor.store import Store
    from conveyor.tracking._remote import ServerUnreachable
    from fixtures.mlflow_client import start_server, stop_server

    root = tmp_path / "server"
    root.mkdir()
    (root / "conveyor.toml").write_text("")
    subprocess.run([sys.executable, "-m", "conveyor", "init"], cwd=root, check=True, capture_output=True)
    monkeypatch.chdir(tmp_path)
    data = _folder(tmp_path / "big", {f"f{i}.txt": f"file {i}" * 50 for i in range(300)})
    server = start_server(root)
    client = remote_tracker(server.url, tmp_path / "spool")
    killed: list[bool] = []

    def kill_once(done: int, total: int) -> None:
        if not killed:
            killed.append(True)
            server.process.kill()
            server.process.wait()

    try:
        with pytest.raises(ServerUnreachable):
            cd.add(data, name="big", tracker=client, progress=kill_once)
    finally:
        client.close()
        if server.process.poll() is None:
            stop_server(server)
    assert killed
    store = Store.from_settings(Settings.load(root, env={}))
    try:
        with pytest.raises(NotFound):
            cd.get_version("big", tracker=store)  # no version row, and no data set row either
        assert cd.list_datasets(tracker=store) == []
    finally:
        store.close()
    again = start_server(root)
    client = remote_tracker(again.url, tmp_path / "spool2")
    try:
        done = cd.add(data, name="big", tracker=client)
        assert (done.version, done.created, done.file_count) == (1, True, 300)
    finally:
        client.close()
        stop_server(again)


def test_status_compares_a_folder_with_a_version_on_the_server(open_server: ThreadServer, tmp_path: Path) -> None:
    client = _client(open_server.url, tmp_path)
    try:
        data = _folder(tmp_path / "st", {"a.txt": "a", "b/c.txt": "c"})
        cd.add(data, name="st", tracker=client)
        assert cd.status(data, "st", tracker=client).state == "unchanged"
        (data / "a.txt").write_text("A!")
        (data / "new.txt").write_text("n")
        found = cd.status(data, "st", tracker=client)
        assert (found.state, found.modified, found.added) == ("changed", ["a.txt"], ["new.txt"])
        guessed = cd.status(data, tracker=client)  # the data set this folder was last added to
        assert (guessed.name, guessed.state, guessed.modified) == ("st", "changed", ["a.txt"])
    finally:
        client.close()


def test_a_retried_record_request_reports_the_first_answer_on_another_server_process(
    behind: Any, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Idempotency-Key receipt lives in the metadata store (written in the version's own
    transaction), so the retry of a request whose answer was lost gets the first answer from
    a second server process over the same store, and from a server restarted in between."""
    from conveyor.server import create_app
    from conveyor.settings import TrackingSettings
    from conveyor.store import Store
    from conveyor.tracking import Tracker

    monkeypatch.chdir(tmp_path)
    other_store = Store.open(store_url)
    other = Tracker(other_store, behind.blobs, TrackingSettings())
    first, second = ThreadServer(create_app(behind)).start(), ThreadServer(create_app(other)).start()
    client = _client(first.url, tmp_path)
    try:
        data = _folder(tmp_path / "set", {"a.txt": "a"})
        v1 = cd.add(data, name="set", tracker=client)
        body = {"digest": v1.digest, "kind": "folder", "source": "x"}
        (data / "b.txt").write_text("b")
        v2 = cd.add(data, name="set", tracker=client)
        path = "/api/v1/datasets/set/versions"
        made = httpx.post(first.url + path, json=body, headers={"Idempotency-Key": "k-made"})
        assert (made.status_code, made.json()["version"], made.json()["created"]) == (201, 3, True)
        same = httpx.post(first.url + path, json=body, headers={"Idempotency-Key": "k-same"})
        assert (same.status_code, same.json()["version"], same.json()["created"]) == (200, 3, False)
        (data / "c.txt").write_text("c")
        assert cd.add(data, name="set", tracker=client).version == 4  # the content moved on
        for server in (second, first):  # another process; then the first one restarted
            replay = httpx.post(server.url + path, json=body, headers={"Idempotency-Key": "k-made"})
            assert (replay.status_code, replay.json()["version"], replay.json()["created"]) == (201, 3, True)
            replay = httpx.post(server.url + path, json=body, headers={"Idempotency-Key": "k-same"})
            assert (replay.status_code, replay.json()["version"], replay.json()["created"]) == (200, 3, False)
            first.stop()
            first = ThreadServer(create_app(behind), port=first.port).start()
        fresh = httpx.post(second.url + path, json=body, headers={"Idempotency-Key": "k-new"})
        assert (fresh.status_code, fresh.json()["version"]) == (201, 5)  # a new key is a new request
        assert [v.version for v in cd.versions("set", tracker=behind)] == [1, 2, 3, 4, 5]
        assert v2.version == 2
    finally:
        client.close()
        first.stop()
        second.stop()
        other_store.close()


def test_a_lost_commit_acknowledgement_makes_one_version_and_keeps_the_first_answer(
    proxied: tuple[Any, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL commits the version and its receipt, the proxy swallows the COMMIT's answer:
    the server's retried transaction finds the receipt (one version, 201), and the client's
    retry with the same key gets that answer again."""
    from sqlalchemy import func, select

    from conveyor.server import create_app
    from conveyor.store._datasets import dataset_versions
    from fixtures.proxy import arm_fault

    proxy, tracker = proxied
    monkeypatch.chdir(tmp_path)
    blob = tracker.blobs.put_bytes(b"the data set's only file\n")
    server = ThreadServer(create_app(tracker)).start()
    try:
        fired = arm_fault(tracker, proxy, "INSERT INTO write_receipts", "commit")
        url = server.url + "/api/v1/datasets/acked/versions"
        body = {"digest": str(blob.digest), "kind": "file", "source": "x"}
        first = httpx.post(url, json=body, headers={"Idempotency-Key": "lost-ack"}, timeout=60)
        assert fired and proxy.commits_cut == 1
        assert (first.status_code, first.json()["version"], first.json()["created"]) == (201, 1, True)
        again = httpx.post(url, json=body, headers={"Idempotency-Key": "lost-ack"}, timeout=60)
        assert (again.status_code, again.json()["version"], again.json()["created"]) == (201, 1, True)
        with tracker.store.read() as conn:
            assert conn.execute(select(func.count()).select_from(dataset_versions)).scalar_one() == 1
    finally:
        server.stop()
