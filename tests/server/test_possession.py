"""Knowing a digest is not the right to its bytes: with authentication on, a stored object
may be named without sending it (folder manifests, the multipart ``exists`` shortcut, data
set versions and "which are missing", pipeline step ends, a run's packages_digest) only by
a caller who sent its bytes or may read something that already holds it. Everyone else is
refused (403 naming the object) or told it is missing — exactly as for an object that is not
stored — and uploads it."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from fixtures.asgi import SyncClient
from fixtures.remote import ThreadServer

from conveyor.blobs import Digest
from conveyor.server import Users, create_app
from conveyor.settings import ServerSettings

V1 = "/api/v1"
SECRET = b"ana's private model weights " * 64
UNKNOWN = "blake3:" + "0" * 64


class Team:
    """An authenticated server (default role: none) with admin, ana, bob and cat."""

    def __init__(self, tracker: Any) -> None:
        self.tracker = tracker
        self.users = Users(tracker.store)
        self.users.add("admin", admin=True)
        for name in ("ana", "bob", "cat"):
            self.users.add(name)
        self.tokens = {n: self.users.create_token(n, "t") for n in ("admin", "ana", "bob", "cat")}
        self.app = create_app(tracker, auth=True, users=self.users, server=ServerSettings(default_role="none"))
        self.client = SyncClient(self.app)

    def call(self, user: str, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"authorization": f"Bearer {self.tokens[user]}", **kwargs.pop("headers", {})}
        return self.client.request(method, V1 + path, headers=headers, **kwargs)

    def ok(self, user: str, method: str, path: str, **kwargs: Any) -> Any:
        answer = self.call(user, method, path, **kwargs)
        assert answer.status_code in (200, 201), (user, path, answer.status_code, answer.text)
        return answer.json() if answer.content else None

    def forbidden(self, user: str, method: str, path: str, naming: str, **kwargs: Any) -> dict[str, Any]:
        answer = self.call(user, method, path, **kwargs)
        assert answer.status_code == 403, (user, path, answer.status_code, answer.text)
        error = answer.json()["error"]
        assert error["code"] == "FORBIDDEN" and naming in error["message"], error
        return dict(error)

    def run(self, user: str, experiment: str, **fields: Any) -> str:
        return str(self.ok(user, "POST", "/runs", json={"experiment": experiment, **fields})["id"])

    def experiment_id(self, run_id: str) -> str:
        return str(self.tracker.get_run(run_id).experiment_id)


@pytest.fixture
def team(tracker: Any) -> Any:
    made = Team(tracker)
    yield made
    made.client.close()


@pytest.fixture
def secret(team: Team) -> tuple[str, str]:
    """ana's run in her private experiment, with SECRET as the artifact model.bin: (run, digest)."""
    run = team.run("ana", "ana-private")
    digest = team.ok("ana", "PUT", f"/runs/{run}/artifacts/model.bin", content=SECRET)["digest"]
    assert digest == _digest_of(SECRET)
    return run, digest


def _entries(digest: str) -> dict[str, Any]:
    return {"entries": [{"path": "model.bin", "digest": digest, "size": len(SECRET)}]}


def test_a_folder_cannot_name_an_object_only_a_private_experiment_holds(team: Team, secret: tuple[str, str]) -> None:
    ana_run, digest = secret
    bob_run = team.run("bob", "bob-exp")
    team.forbidden("bob", "GET", f"/runs/{ana_run}/artifacts/model.bin", "may not read")
    error = team.forbidden("bob", "POST", f"/runs/{bob_run}/folders/stolen", digest, json=_entries(digest))
    assert error["field"] == "entries" and "model.bin" in error["message"]
    assert team.ok("bob", "GET", f"/runs/{bob_run}/artifacts") == []  # nothing was recorded
    assert team.call("bob", "GET", f"/runs/{bob_run}/artifacts/stolen/model.bin").status_code == 404
    # a user who may read ana's experiment may name it without sending it again ...
    team.users.grant("cat", "experiment", team.experiment_id(ana_run), "read")
    cat_run = team.run("cat", "cat-exp")
    team.ok("cat", "POST", f"/runs/{cat_run}/folders/copied", json=_entries(digest))
    # ... and so may bob once he sent the bytes (he has them: nothing is revealed)
    assert team.ok("bob", "PUT", f"/runs/{bob_run}/blobs", content=SECRET)["digest"] == digest
    team.ok("bob", "POST", f"/runs/{bob_run}/folders/mine", json=_entries(digest))
    assert [a["path"] for a in team.ok("bob", "GET", f"/runs/{bob_run}/artifacts")] == ["mine"]
    # the admin may name anything
    admin_run = team.run("admin", "admin-exp")
    team.ok("admin", "POST", f"/runs/{admin_run}/folders/any", json=_entries(digest))


def test_a_folder_file_of_a_private_folder_is_refused_too(team: Team) -> None:
    ana_run = team.run("ana", "ana-private")
    inner = team.ok("ana", "PUT", f"/runs/{ana_run}/blobs", content=SECRET)["digest"]
    team.ok("ana", "POST", f"/runs/{ana_run}/folders/weights", json=_entries(inner))
    bob_run = team.run("bob", "bob-exp")
    team.forbidden("bob", "POST", f"/runs/{bob_run}/folders/stolen", inner, json=_entries(inner))


def test_the_exists_shortcut_is_only_for_objects_the_caller_may_reference(team: Team,
                                                                         secret: tuple[str, str]) -> None:
    ana_run, digest = secret
    announce = {"path": "copy.bin", "digest": digest, "size": len(SECRET)}
    unknown = {"path": "copy.bin", "digest": UNKNOWN, "size": len(SECRET)}
    bob_run = team.run("bob", "bob-exp")
    bob = team.ok("bob", "POST", f"/runs/{bob_run}/uploads", json=announce)
    never = team.ok("bob", "POST", f"/runs/{bob_run}/uploads", json=unknown)
    # bob is asked for the bytes, exactly as for an object that is not stored: no oracle
    assert bob["mode"] == never["mode"] == "parts" and bob["missing"] == never["missing"] == [1]
    complete = team.call("bob", "POST", f"/runs/{bob_run}/uploads/{bob['id']}/complete")
    assert complete.status_code == 409 and "missing part(s) 1" in complete.json()["error"]["message"], complete.text
    assert team.ok("bob", "GET", f"/runs/{bob_run}/artifacts") == []
    # as a folder's file (path null) too
    folder_file = team.ok("bob", "POST", f"/runs/{bob_run}/uploads", json={**announce, "path": None})
    assert folder_file["mode"] == "parts"
    # ana (whose experiment holds it) and a reader of it skip the upload
    assert team.ok("ana", "POST", f"/runs/{ana_run}/uploads", json=announce)["mode"] == "exists"
    team.users.grant("cat", "experiment", team.experiment_id(ana_run), "read")
    cat_run = team.run("cat", "cat-exp")
    cat = team.ok("cat", "POST", f"/runs/{cat_run}/uploads", json=announce)
    assert cat["mode"] == "exists"
    assert team.ok("cat", "POST", f"/runs/{cat_run}/uploads/{cat['id']}/complete")["digest"] == digest


def test_bob_who_sends_the_parts_gets_his_artifact(team: Team, secret: tuple[str, str]) -> None:
    _, digest = secret
    bob_run = team.run("bob", "bob-exp")
    upload = team.ok("bob", "POST", f"/runs/{bob_run}/uploads",
                     json={"path": None, "digest": digest, "size": len(SECRET)})
    team.ok("bob", "PUT", f"/runs/{bob_run}/uploads/{upload['id']}/parts/1", content=SECRET,
            headers={"X-Conveyor-Part-Digest": digest})
    assert team.ok("bob", "POST", f"/runs/{bob_run}/uploads/{upload['id']}/complete")["digest"] == digest
    team.ok("bob", "POST", f"/runs/{bob_run}/folders/mine", json=_entries(digest))  # he sent it: his to name


def _dataset(team: Team, user: str, name: str, body: bytes) -> str:
    digest = str(Digest.parse(team.ok(user, "PUT", f"/datasets/{name}/blobs/{_digest_of(body)}", content=body)["digest"]))
    team.ok(user, "POST", f"/datasets/{name}/versions", json={"digest": digest, "kind": "file"})
    return digest


def _digest_of(body: bytes) -> str:
    from conveyor.blobs._digest import ALGORITHM, new_hasher

    hasher = new_hasher()
    hasher.update(body)
    return f"{ALGORITHM}:{hasher.hexdigest()}"


def test_a_data_set_version_cannot_name_a_private_data_sets_object(team: Team) -> None:
    body = b"id,label\n" + b"1,secret\n" * 100
    digest = _dataset(team, "ana", "ana-secret", body)
    # bob learns nothing from "which are missing": stored or not, both are missing to him
    missing = team.ok("bob", "POST", "/datasets/bob-data/blobs/missing", json={"digests": [digest, UNKNOWN]})
    assert missing["missing"] == sorted([digest, UNKNOWN])
    team.forbidden("bob", "POST", "/datasets/bob-data/versions", digest, json={"digest": digest, "kind": "file"})
    assert team.call("bob", "GET", "/datasets/bob-data").status_code in (403, 404)  # nothing was made
    # nor as a file of a folder version: bob uploads a manifest of his own naming ana's object
    from conveyor.blobs import Manifest, ManifestEntry

    manifest = Manifest.of([ManifestEntry("labels.csv", Digest.parse(digest), len(body))]).to_bytes()
    team.ok("bob", "PUT", f"/datasets/bob-data/blobs/{_digest_of(manifest)}", content=manifest)
    team.forbidden("bob", "POST", "/datasets/bob-data/versions", digest,
                   json={"digest": _digest_of(manifest), "kind": "folder"})
    # a reader of ana's data set may name it without sending it
    team.users.grant("cat", "data", "ana-secret", "read")
    assert team.ok("cat", "POST", "/datasets/cat-data/blobs/missing", json={"digests": [digest]})["missing"] == []
    team.ok("cat", "POST", "/datasets/cat-data/versions", json={"digest": digest, "kind": "file"})
    # and bob, once he sent the bytes
    team.ok("bob", "PUT", f"/datasets/bob-data/blobs/{digest}", content=body)
    assert team.ok("bob", "POST", "/datasets/bob-data/blobs/missing", json={"digests": [digest]})["missing"] == []
    team.ok("bob", "POST", "/datasets/bob-data/versions", json={"digest": _digest_of(manifest), "kind": "folder"})


def test_a_data_sets_writer_names_its_own_older_objects_without_sending_them(team: Team) -> None:
    body = b"a,b\n1,2\n"
    digest = _dataset(team, "ana", "ana-data", body)
    team.users.grant("bob", "data", "ana-data", "edit")
    assert team.ok("bob", "POST", "/datasets/ana-data/blobs/missing", json={"digests": [digest]})["missing"] == []


def test_a_runs_packages_digest_must_be_the_callers_to_name(team: Team) -> None:
    ana_run = team.run("ana", "ana-private", packages="numpy==2.0\nsecret-internal-lib==1.0\n")
    digest = team.tracker.get_run(ana_run).packages_digest
    team.forbidden("bob", "POST", "/runs", "packages_digest", json={"experiment": "bob-exp", "packages_digest": digest})
    team.run("ana", "ana-private", packages_digest=digest)  # hers: sent once, named after
    team.users.grant("cat", "experiment", team.experiment_id(ana_run), "read")
    team.run("cat", "cat-exp", packages_digest=digest)


def test_pipeline_missing_hides_objects_the_caller_may_not_reference(team: Team, secret: tuple[str, str]) -> None:
    _, digest = secret
    bob_run = team.run("bob", "bob-pipes")
    team.ok("bob", "POST", "/pipelines/runs", json={"run_id": bob_run, "pipeline": "p", "executor": "local",
                                                     "dag": {"nodes": [], "edges": []}})
    missing = team.ok("bob", "POST", f"/pipelines/runs/{bob_run}/blobs/missing", json={"digests": [digest, UNKNOWN]})
    assert missing["missing"] == sorted([digest, UNKNOWN])
    team.ok("bob", "PUT", f"/pipelines/runs/{bob_run}/blobs/{digest}", content=SECRET)
    assert team.ok("bob", "POST", f"/pipelines/runs/{bob_run}/blobs/missing", json={"digests": [digest]})["missing"] == []


def test_remote_logging_with_a_token_uploads_what_the_caller_may_not_name(tracker: Any, tmp_path: Path) -> None:
    """bob's RemoteTracker logs a folder and a big (multipart) file holding the same bytes as
    ana's private artifact: both are sent, and both work."""
    from conveyor.settings import TrackingSettings
    from conveyor.tracking._remote import RemoteTracker

    team = Team(tracker)
    server = ThreadServer(team.app).start()
    try:
        ana_run = team.run("ana", "ana-private")
        team.ok("ana", "PUT", f"/runs/{ana_run}/artifacts/model.bin", content=SECRET)
        folder = tmp_path / "weights"
        folder.mkdir()
        (folder / "model.bin").write_bytes(SECRET)
        (folder / "notes.txt").write_text("bob's own", encoding="utf-8")
        client = RemoteTracker(ServerSettings(url=server.url, token=team.tokens["bob"], retry_seconds=0,
                                              multipart_threshold=1024),
                               TrackingSettings(capture_packages=False), spool_dir=tmp_path / "spool")
        try:
            run = client.create_run("bob-exp")
            client.log_artifacts(run.id, folder)
            client.log_artifact(run.id, folder / "model.bin", "big")
            client.end_run(run.id)
            assert {a.path for a in client.list_artifacts(run.id)} == {"weights", "big/model.bin"}
        finally:
            client.close()
        assert team.call("bob", "GET", f"/runs/{run.id}/artifacts/big/model.bin").content == SECRET
    finally:
        server.stop()
        team.client.close()


def test_without_authentication_everything_may_be_named(tracker: Any) -> None:
    client = SyncClient(create_app(tracker))
    try:
        run = client.post(f"{V1}/runs", json={"experiment": "a"}).json()["id"]
        digest = client.put(f"{V1}/runs/{run}/blobs", content=SECRET).json()["digest"]
        other = client.post(f"{V1}/runs", json={"experiment": "b"}).json()["id"]
        assert client.post(f"{V1}/runs/{other}/uploads", json={"path": "x", "digest": digest,
                                                             "size": len(SECRET)}).json()["mode"] == "exists"
        answer = client.post(f"{V1}/runs/{other}/folders/f", json=_entries(digest))
        assert answer.status_code == 201, answer.text
    finally:
        client.close()


def test_an_uploaded_object_is_remembered_per_user(team: Team) -> None:
    """bob's upload gives bob, not cat, the right to name it."""
    bob_run = team.run("bob", "bob-exp")
    body = uuid.uuid4().bytes * 100
    digest = team.ok("bob", "PUT", f"/runs/{bob_run}/blobs", content=body)["digest"]
    cat_run = team.run("cat", "cat-exp")
    entries = {"entries": [{"path": "x", "digest": digest, "size": len(body)}]}
    team.forbidden("cat", "POST", f"/runs/{cat_run}/folders/f", digest, json=entries)
    team.ok("bob", "POST", f"/runs/{bob_run}/folders/f", json=entries)
