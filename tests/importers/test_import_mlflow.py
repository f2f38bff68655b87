"""``conveyor import mlflow`` against stores written by the real mlflow package (its own
virtualenv): a file store, a SQLite store and a live ``mlflow server``. Every value the
mlflow client reads back is compared with what conveyor holds after the import; a second
import copies nothing; hostile artifact paths are refused."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures.mlflow_client import free_port, init_project
from fixtures.mlflow_full import mlflow_env, mlflow_full_python, run_script  # noqa: F401  (fixture)

SRC = Path(__file__).resolve().parents[2] / "src"

pytestmark = pytest.mark.slow

# Writes a varied store with the real mlflow, then reads everything back through MlflowClient
# (the expected values). PKG is a conveyor model package folder made by the test.
WRITE = r"""
import hashlib, json, math, os, sys, time
import numpy as np
import mlflow
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression
from sklearn.linear_model import Ridge

client = MlflowClient()
alpha = client.create_experiment("alpha", tags={"owner": "ana", "mlflow.note.content": "churn work"})
beta = client.create_experiment("beta")
os.makedirs("files/nested/deeper", exist_ok=True)
open("files/notes.txt", "w").write("hello")
open("files/nested/data.bin", "wb").write(bytes(range(256)) * 40)
open("files/nested/deeper/x.json", "w").write('{"k": 1}')

with mlflow.start_run(experiment_id=alpha, run_name="parent") as parent:
    mlflow.log_params({"lr": 0.01, "layers": "[64, 32]", "long": "x" * 5000})
    mlflow.set_tags({"team": "ml", "stage": "dev"})
    base = 1_700_000_000_000
    for i in range(300):
        client.log_metric(parent.info.run_id, "loss", 1.0 / (i + 1), timestamp=base + i * 7, step=i)
    client.log_metric(parent.info.run_id, "acc", float("nan"), timestamp=base, step=0)
    client.log_metric(parent.info.run_id, "acc", float("inf"), timestamp=base + 1, step=1)
    client.log_metric(parent.info.run_id, "acc", 0.5, timestamp=base + 2, step=1)
    client.log_metric(parent.info.run_id, "acc", -3.25, timestamp=base + 3, step=-1)
    mlflow.log_artifacts("files", "inputs")
    mlflow.log_artifact("files/notes.txt")
    mlflow.log_artifacts(sys.argv[1], "pkg")
    X = np.random.default_rng(0).normal(size=(30, 3))
    logged = mlflow.sklearn.log_model(LogisticRegression().fit(X, X[:, 0] > 0), name="clf_model")
    with mlflow.start_run(run_name="child", nested=True) as child:
        mlflow.log_metric("m", 2.0, step=5)
        mlflow.log_param("p", "v")

with mlflow.start_run(experiment_id=beta, run_name="failed") as failed:
    mlflow.log_metric("x", 1.0)
    mlflow.sklearn.log_model(Ridge().fit(X, X[:, 1]), name="tree")
mlflow.end_run()
client.set_terminated(failed.info.run_id, "FAILED")
with mlflow.start_run(experiment_id=beta, run_name="gone") as gone:
    mlflow.log_param("q", "1")
client.delete_run(gone.info.run_id)
old = client.create_experiment("old")
with mlflow.start_run(experiment_id=old, run_name="archived") as archived:
    mlflow.log_metric("z", 3.0)
client.delete_experiment(old)

client.create_registered_model("pkgmodel", description="a conveyor package")
v1 = client.create_model_version("pkgmodel", f"runs:/{parent.info.run_id}/pkg", run_id=parent.info.run_id,
                                 tags={"quality": "good"}, description="first")
client.set_registered_model_alias("pkgmodel", "champion", v1.version)
clf = mlflow.register_model(logged.model_uri, "clf")
client.set_registered_model_alias("clf", "prod", clf.version)
client.set_model_version_tag("clf", clf.version, "validated", "yes")

# read everything back
runs = {}
for exp_id in (alpha, beta, old):
    for r in client.search_runs([exp_id], run_view_type=3):
        hist = {}
        for key in r.data.metrics:
            hist[key] = sorted([[m.step, m.timestamp, repr(m.value)] for m in client.get_metric_history(r.info.run_id, key)])
        files = {}
        def walk(path):
            for f in client.list_artifacts(r.info.run_id, path):
                if f.is_dir:
                    walk(f.path)
                else:
                    local = client.download_artifacts(r.info.run_id, f.path, "dl")
                    files[f.path] = hashlib.sha256(open(local, "rb").read()).hexdigest()
        walk(None)
        runs[r.info.run_id] = {"name": r.info.run_name, "status": r.info.status, "start": r.info.start_time,
                               "end": r.info.end_time, "user": r.info.user_id, "deleted": r.info.lifecycle_stage == "deleted",
                               "experiment": client.get_experiment(r.info.experiment_id).name,
                               "params": r.data.params, "tags": r.data.tags, "history": hist, "files": files}
# the logged models' files (MLflow 3 keeps them outside the run's artifacts)
models = {}
for name, model_id, run in (("clf_model", logged.model_id, parent.info.run_id),
                            ("tree", client.search_logged_models([beta])[0].model_id, failed.info.run_id)):
    location = mlflow.get_logged_model(model_id).artifact_location  # the stored files, as they are
    local = mlflow.artifacts.download_artifacts(artifact_uri=location, dst_path="dl-" + name)
    files = {}
    for root, _, names in os.walk(local):
        for n in names:
            p = os.path.join(root, n)
            files[os.path.relpath(p, local)] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    models[name] = {"run": run, "files": files}
print(json.dumps({"runs": runs, "models": models, "parent": parent.info.run_id, "child": child.info.run_id,
                  "failed": failed.info.run_id, "gone": gone.info.run_id, "archived": archived.info.run_id,
                  "alpha": alpha, "beta": beta}))
"""


def _package(folder: Path) -> Path:
    import numpy as np
    from sklearn.linear_model import Ridge

    import conveyor.models

    X = np.random.default_rng(1).normal(size=(40, 3))
    conveyor.models.save(Ridge().fit(X, X.sum(axis=1)), folder / "pkg", input_example=X[:3])
    return folder / "pkg"


def _cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONVEYOR_", "MLFLOW_"))}
    env["PYTHONPATH"] = str(SRC)
    return subprocess.run([sys.executable, "-m", "conveyor", *args], cwd=project, env=env, capture_output=True,
                          text=True, timeout=900)


def _import(project: Path, uri: str, *extra: str) -> dict[str, Any]:
    done = _cli(project, "import", "mlflow", "--from", uri, "--json", *extra)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def _tracker(project: Path) -> Any:
    from conveyor.settings import Settings
    from conveyor.tracking import Tracker

    return Tracker.from_settings(Settings.load(project, env={}), create=False)


def _value(v: float) -> str:
    return repr(v) if not math.isnan(v) else "nan"


def _check(project: Path, expected: dict[str, Any], source_runs: int) -> None:
    """Every run, param, tag, metric point, artifact byte and registry entry matches."""
    from conveyor.blobs import Digest
    from conveyor.registry import Registry

    tracker = _tracker(project)
    try:
        for run_id, want in expected["runs"].items():
            run = tracker.get_run(run_id)
            assert run.name == want["name"] and run.status.value == want["status"]
            assert run.start_time == want["start"] and run.end_time == want["end"]
            assert run.user == want["user"] and run.deleted == want["deleted"]
            assert run.experiment == want["experiment"]
            assert run.params == want["params"]
            assert {k: v for k, v in run.tags.items() if k in want["tags"]} == want["tags"]
            for key, points in want["history"].items():
                got = sorted([m.step, m.timestamp, _value(m.value)] for m in tracker.metric_history(run_id, key))
                assert got == sorted([s, t, "nan" if v == "nan" else v] for s, t, v in points), key
            files = {}
            for artifact in tracker.list_artifacts(run_id):
                if artifact.is_dir:
                    for entry in tracker.blobs.read_manifest(Digest.parse(artifact.digest)).entries:
                        data = tracker.blobs.read_bytes(entry.digest)
                        files[f"{artifact.path}/{entry.path}"] = hashlib.sha256(data).hexdigest()
                else:
                    files[artifact.path] = hashlib.sha256(tracker.read_artifact(run_id, artifact.path)).hexdigest()
            for path, digest in want["files"].items():
                assert files.get(path) == digest, path
        # MLflow 3 logged models: their files are in the run's artifacts under the model's name
        for name, model in expected["models"].items():
            for rel, digest in model["files"].items():
                data = tracker.read_artifact(model["run"], f"{name}/{rel}")
                assert hashlib.sha256(data).hexdigest() == digest, (name, rel)
        child = tracker.get_run(expected["child"])
        assert child.parent_id == expected["parent"]
        assert len(tracker.search_runs(output="runs", include_deleted=True)) == source_runs
        assert tracker.get_experiment("old").archived and not tracker.get_experiment("alpha").archived
        assert tracker.get_run(expected["archived"]).experiment == "old"

        registry = Registry(tracker)
        model = registry.get_model("pkgmodel")
        assert model.description == "a conveyor package" and set(model.aliases) == {"champion"}
        version = registry.get_version("pkgmodel", model.aliases["champion"])
        assert version.tags["mlflow.version"] == "1" and version.tags["quality"] == "good"
        assert version.description == "first" and version.run_id == expected["parent"]
        assert len(registry.list_versions("pkgmodel")) == 1
        with pytest.raises(Exception, match="clf"):
            registry.get_model("clf")
        parent = tracker.get_run(expected["parent"])
        kept = json.loads(parent.tags["mlflow.registered_model/clf/1"])
        assert kept["aliases"] == ["prod"] and kept["tags"] == {"validated": "yes"}
        assert kept["artifact_path"] == "clf_model" and "MLflow-format model" in kept["not_registered_because"]
    finally:
        tracker.close()


def _write_store(python: Path, folder: Path, uri: str) -> dict[str, Any]:
    pkg = _package(folder)
    return run_script(python, WRITE.replace("sys.argv[1]", repr(str(pkg))), folder,  # type: ignore[no-any-return]
                      MLFLOW_TRACKING_URI=uri, MLFLOW_ALLOW_FILE_STORE="true")


def _counts(project: Path) -> tuple[int, int, int]:
    tracker = _tracker(project)
    try:
        with tracker.store.read() as conn:
            points = tracker.store.metrics.count(conn)
        runs = tracker.search_runs(output="runs", include_deleted=True)
        artifacts = sum(len(tracker.list_artifacts(r.id)) for r in runs)
        return points, len(runs), artifacts
    finally:
        tracker.close()


@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_import_local_store(mlflow_full_python: Path, tmp_path: Path, kind: str) -> None:
    source = tmp_path / "mlflow"
    source.mkdir()
    uri = "file:./mlruns" if kind == "file" else "sqlite:///mlflow.db"
    expected = _write_store(mlflow_full_python, source, uri)
    project = init_project(tmp_path / "project")
    where = str(source / "mlruns") if kind == "file" else f"sqlite:///{source / 'mlflow.db'}"

    first = _import(project, where)
    assert first["runs_copied"] == 5 and first["versions_registered"] == 1 and first["aliases_set"] == 1
    assert [(n["model"], n["version"], n["aliases"]) for n in first["not_registered"]] == [("clf", 1, ["prod"])]
    assert first["refused"] == [] and first["logged_models_copied"] == 2
    _check(project, expected, 5)
    before = _counts(project)

    second = _import(project, where)
    assert second["runs_copied"] == 0 and second["runs_already_imported"] == 5
    assert second["metric_points"] == 0 and second["artifact_files"] == 0 and second["versions_registered"] == 0
    assert second["versions_already_imported"] == 2 and second["not_registered"] == []
    assert _counts(project) == before
    _check(project, expected, 5)

    # an import interrupted after a run's row but before its artifacts finishes that run
    tracker = _tracker(project)
    try:
        with tracker.store.write() as conn:
            tracker.store.runs.set_tags(conn, expected["parent"], {"conveyor.import.state": "copying"})
            lost = [a.path for a in tracker.store.artifacts.list(conn, expected["parent"])
                    if a.path.startswith(("clf_model/", "inputs/"))]
            tracker.store.artifacts.remove(conn, expected["parent"], lost)
    finally:
        tracker.close()
    third = _import(project, where)
    assert third["runs_resumed"] == 1 and third["runs_copied"] == 0 and third["metric_points"] == 0
    assert third["artifact_files"] == len(lost) and third["versions_registered"] == 0
    assert _counts(project) == before
    _check(project, expected, 5)

    # the summary a person reads names what was not registered and why
    shown = _cli(project, "import", "mlflow", "--from", where, "--experiment", "alpha")
    assert shown.returncode == 0, shown.stderr
    assert "already here" in shown.stdout


def test_import_only_named_experiments(mlflow_full_python: Path, tmp_path: Path) -> None:
    source = tmp_path / "mlflow"
    source.mkdir()
    expected = _write_store(mlflow_full_python, source, "sqlite:///mlflow.db")
    project = init_project(tmp_path / "project")
    report = _import(project, f"sqlite:///{source / 'mlflow.db'}", "--experiment", "beta")
    assert report["runs_copied"] == 2 and report["versions_registered"] == 0
    tracker = _tracker(project)
    try:
        ids = {r.id for r in tracker.search_runs(output="runs", include_deleted=True)}
        assert ids == {expected["failed"], expected["gone"]}
        assert tracker.get_run(expected["gone"]).deleted and tracker.get_run(expected["failed"]).status.value == "FAILED"
    finally:
        tracker.close()
    bad = _cli(project, "import", "mlflow", "--from", f"sqlite:///{source / 'mlflow.db'}", "--experiment", "nope")
    assert bad.returncode == 2 and "no experiment 'nope'" in bad.stderr and "alpha" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.parametrize(
    ("uri", "code", "words"),
    [
        ("http://127.0.0.1:{port}", 4, "cannot be reached"),
        ("postgresql://u@db/mlflow", 2, "mlflow server --backend-store-uri"),
        ("s3://bucket/mlruns", 2, "not supported"),
        ("{tmp}/missing", 2, "no such folder"),
        ("sqlite:///{tmp}/missing.db", 2, "no file"),
        ("{tmp}", 2, "not an MLflow file store"),
        ("sqlite:///{tmp}/conveyor.toml", 2, "SQLite"),
        ("http://", 2, "names no host"),
    ],
)
def test_bad_sources(tmp_path: Path, uri: str, code: int, words: str) -> None:
    project = init_project(tmp_path / "project")
    value = uri.format(port=free_port(), tmp=project)
    done = _cli(project, "import", "mlflow", "--from", value)
    assert done.returncode == code, done.stderr
    assert words in done.stderr and "Traceback" not in done.stderr
    assert value in done.stderr.replace("\n", "") or value.rstrip("/") in done.stderr.replace("\n", "")


def test_hostile_file_store_paths(mlflow_full_python: Path, tmp_path: Path) -> None:
    """A symlink planted in a run's artifacts and an artifact location that climbs out with
    ``..`` are refused and reported; the secret next to the store is never copied."""
    source = tmp_path / "mlflow"
    source.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    out = run_script(mlflow_full_python, """
        import json, mlflow
        mlflow.set_experiment("e")
        with mlflow.start_run() as a:
            mlflow.log_text("ok", "fine.txt")
        with mlflow.start_run() as b:
            mlflow.log_text("ok", "fine.txt")
        print(json.dumps({"a": a.info.run_id, "b": b.info.run_id, "a_root": a.info.artifact_uri,
                          "b_root": b.info.artifact_uri}))
    """, source, MLFLOW_TRACKING_URI="file:./mlruns", MLFLOW_ALLOW_FILE_STORE="true")
    a_root = Path(out["a_root"].removeprefix("file://"))
    (a_root / "leak.txt").symlink_to(secret)
    (a_root / "leakdir").symlink_to(tmp_path, target_is_directory=True)
    meta = next((source / "mlruns").glob(f"*/{out['b']}/meta.yaml"))
    meta.write_text(meta.read_text().replace(out["b_root"], out["b_root"] + "/../../../../.."))

    project = init_project(tmp_path / "project")
    report = _import(project, str(source / "mlruns"))
    refused = {(r["run_id"], r["path"]) for r in report["refused"]}
    assert (out["a"], "leak.txt") in refused and (out["a"], "leakdir") in refused
    assert any(out["b"] in p and "'..'" in p for p in report["problems"])
    tracker = _tracker(project)
    try:
        assert [a.path for a in tracker.list_artifacts(out["a"])] == ["fine.txt"]
        assert tracker.list_artifacts(out["b"]) == []
        for digest in tracker.blobs.iter_digests():
            assert tracker.blobs.read_bytes(digest) != b"top secret"
    finally:
        tracker.close()


# -- a tracking server ---------------------------------------------------------------------------
def _serve(app: Any, port: int) -> Iterator[None]:
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(10)


def test_hostile_server_listing(tmp_path: Path) -> None:
    """A server (here a hostile one answering MLflow's routes) that lists ``../`` paths, an
    absolute path or a backslash gets them refused: nothing is fetched for them."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    fetched: list[str] = []
    run = {"info": {"run_id": "a" * 32, "experiment_id": "1", "run_name": "r", "status": "FINISHED",
                    "start_time": 1, "end_time": 2, "user_id": "u", "lifecycle_stage": "active",
                    "artifact_uri": "mlflow-artifacts:/1/" + "a" * 32 + "/artifacts"}, "data": {}}

    async def experiments(request: Request) -> JSONResponse:
        return JSONResponse({"experiments": [{"experiment_id": "1", "name": "e", "lifecycle_stage": "active"}]})

    async def runs(request: Request) -> JSONResponse:
        return JSONResponse({"runs": [run]})

    async def listing(request: Request) -> JSONResponse:
        return JSONResponse({"files": [{"path": "../../etc/passwd", "is_dir": False, "file_size": 5},
                                       {"path": "/abs", "is_dir": False, "file_size": 5},
                                       {"path": "a\\b", "is_dir": False, "file_size": 5},
                                       {"path": "ok.txt", "is_dir": False, "file_size": 2}]})

    async def download(request: Request) -> PlainTextResponse:
        fetched.append(request.path_params["path"])
        return PlainTextResponse("ok")

    async def empty(request: Request) -> JSONResponse:
        return JSONResponse({})

    app = Starlette(routes=[
        Route("/api/2.0/mlflow/experiments/search", experiments, methods=["GET", "POST"]),
        Route("/api/2.0/mlflow/runs/search", runs, methods=["POST"]),
        Route("/api/2.0/mlflow/logged-models/search", empty, methods=["POST"]),
        Route("/api/2.0/mlflow/registered-models/search", empty, methods=["GET"]),
        Route("/api/2.0/mlflow-artifacts/artifacts", listing, methods=["GET"]),
        Route("/api/2.0/mlflow-artifacts/artifacts/{path:path}", download, methods=["GET"]),
    ])
    port = free_port()
    project = init_project(tmp_path / "project")
    for _ in _serve(app, port):
        report = _import(project, f"http://127.0.0.1:{port}")
    assert sorted(r["path"] for r in report["refused"]) == sorted(["../../etc/passwd", "/abs", "a\\b"])
    assert fetched == ["1/" + "a" * 32 + "/artifacts/ok.txt"]


def _mlflow_server(python: Path, folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    mlflow_bin = python.parent / "mlflow"
    env = mlflow_env(PATH=f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    log = (folder / "server.log").open("wb")
    proc = subprocess.Popen([str(mlflow_bin), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                             "--backend-store-uri", f"sqlite:///{folder / 'server.db'}",
                             "--artifacts-destination", str(folder / "served-artifacts")],
                            cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"mlflow server exited:\n{(folder / 'server.log').read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise AssertionError("mlflow server did not start in 300 s")


def test_import_from_live_mlflow_server(mlflow_full_python: Path, tmp_path: Path) -> None:
    source = tmp_path / "mlflow"
    source.mkdir()
    proc, url = _mlflow_server(mlflow_full_python, source)
    try:
        expected = _write_store(mlflow_full_python, source, url)
        project = init_project(tmp_path / "project")
        first = _import(project, url)
        assert first["runs_copied"] == 5 and first["versions_registered"] == 1 and first["refused"] == []
        assert first["logged_models_copied"] == 2
        _check(project, expected, 5)
        before = _counts(project)
        second = _import(project, url)
        assert second["runs_copied"] == 0 and second["artifact_files"] == 0
        assert _counts(project) == before
    finally:
        proc.terminate()
        proc.wait(30)
