"""Pipelines run embedded (the coordinator opens the stores) and remote (``[server] url``:
steps run here with the local executor, every record and object goes through a real
``conveyor server``; the client's conveyor.toml names only the server)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fixtures.remote import ThreadServer, mode_project

MODELS = """
import pandas as pd

@step
def load(n: int) -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer
    frame = load_breast_cancer(as_frame=True).frame
    return frame.head(n)

@step
def fit(table: pd.DataFrame, C: float) -> object:
    from sklearn.linear_model import LogisticRegression
    return LogisticRegression(C=C, max_iter=2000).fit(table.drop(columns=["target"]), table["target"])

@step(metrics=True)
def evaluate(model: object, table: pd.DataFrame) -> dict:
    return {"accuracy": float(model.score(table.drop(columns=["target"]), table["target"]))}

@pipeline(candidate="fit", evaluation="evaluate")
def classify(C: float = 1.0, n: int = 200):
    table = load(n=n)
    evaluate(model=fit(table=table, C=C), table=table)

@step
def points(k: int) -> pd.DataFrame:
    import numpy as np
    x = np.arange(20, dtype=float)
    return pd.DataFrame({"x": x, "y": k * x + 1.0})

@step
def regress(table: pd.DataFrame, alpha: float) -> object:
    from sklearn.linear_model import Ridge
    print("fitting ridge", alpha)
    return Ridge(alpha=alpha).fit(table[["x"]], table["y"])

@step
def predict(model: object) -> list:
    return [float(v) for v in model.predict(pd.DataFrame({"x": [100.0]}))]

@pipeline
def regression(k: int = 2, alpha: float = 0.001):
    predict(model=regress(table=points(k=k), alpha=alpha))

@step
def explode(table: pd.DataFrame) -> int:
    raise ValueError("broken on purpose: " + str(len(table)))

@step
def after(x: int) -> int:
    return x

@step
def fit_frame(table: pd.DataFrame) -> object:
    from sklearn.tree import DecisionTreeClassifier
    return DecisionTreeClassifier(random_state=0).fit(table[["a", "b"]], table["label"])

@step(metrics=True)
def score(model: object, table: pd.DataFrame) -> dict:
    return {"accuracy": float(model.score(table[["a", "b"]], table["label"]))}

@pipeline(candidate="fit_frame", evaluation="score")
def from_dataset(ref: str = "labelled@1"):
    table = cp.dataset(ref)
    score(model=fit_frame(table=table), table=table)

@pipeline
def failing():
    after(x=explode(table=points(k=1)))
"""


@pytest.fixture
def mode_root(mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    yield from mode_project(mode, tmp_path, monkeypatch)


@pytest.fixture
def tracker(mode_root: Path) -> Any:
    from conveyor.tracking import get_tracker

    return get_tracker()


def test_classifier_on_a_table_runs_caches_and_reruns(pipes: Any, mode: str, tracker: Any) -> None:
    import conveyor.pipelines as cp
    from conveyor.tracking._remote import RemoteTracker

    assert isinstance(tracker, RemoteTracker) == (mode == "remote")
    module = pipes(MODELS)
    first = cp.run(module.classify, params={"C": 1.0}, tracker=tracker)
    assert first.ok, {n: s.error for n, s in first.steps.items()}
    assert first.cached == []
    assert 0.8 < first.evaluation["accuracy"] <= 1.0
    assert first.candidate == f"runs:/{first.steps['fit'].run_id}/model"
    table = first.load("load", tracker=tracker)
    assert len(table) == 200 and "target" in table.columns
    model = first.load("fit", tracker=tracker)
    assert model.predict(table.drop(columns=["target"])[:5]).shape == (5,)
    again = cp.run(module.classify, params={"C": 1.0}, tracker=tracker)
    assert again.ok and sorted(again.cached) == ["evaluate", "fit", "load"]
    assert again.evaluation == first.evaluation
    assert again.steps["fit"].outputs == first.steps["fit"].outputs
    assert again.candidate == f"runs:/{again.steps['fit'].run_id}/model"
    changed = cp.run(module.classify, params={"C": 0.01}, tracker=tracker)
    assert changed.ok and changed.cached == ["load"]
    step_run = tracker.get_run(changed.steps["fit"].run_id)
    assert step_run.parent_id == changed.run_id and step_run.params["C"] == "0.01"
    assert step_run.tags["conveyor.cache"] == "miss"
    hit = tracker.get_run(again.steps["fit"].run_id)
    assert hit.tags["conveyor.cache"] == "hit" and hit.tags["conveyor.cached_from"] == first.steps["fit"].run_id
    parent = tracker.get_run(first.run_id)
    assert parent.tags["conveyor.candidate"] == first.candidate
    assert parent.metrics["accuracy"] == pytest.approx(first.evaluation["accuracy"])


def test_regressor_outputs_flow_downstream_and_logs_are_kept(pipes: Any, tracker: Any) -> None:
    import conveyor.pipelines as cp

    module = pipes(MODELS)
    result = cp.run(module.regression, params={"k": 3}, tracker=tracker)
    assert result.ok, {n: s.error for n, s in result.steps.items()}
    assert result.load("predict", tracker=tracker)[0] == pytest.approx(301.0, rel=1e-3)
    log = tracker.read_artifact(result.steps["regress"].run_id, "logs/step.log").decode()
    assert "fitting ridge 0.001" in log
    other = cp.run(module.regression, params={"k": 5}, tracker=tracker)
    assert other.cached == [] and other.load("predict", tracker=tracker)[0] == pytest.approx(501.0, rel=1e-3)


def test_a_data_set_version_as_input(pipes: Any, tracker: Any, tmp_path: Path) -> None:
    import conveyor.data as cd
    import conveyor.pipelines as cp

    csv = tmp_path / "labelled.csv"
    rows = ["a,b,label"] + [f"{i},{(i * 7) % 5},{int(i % 3 == 0)}" for i in range(60)]
    csv.write_text("\n".join(rows) + "\n")
    assert cd.add(csv, name="labelled", tracker=tracker).ref == "data:/labelled@1"
    module = pipes(MODELS)
    result = cp.run(module.from_dataset, tracker=tracker)
    assert result.ok, {n: s.error for n, s in result.steps.items()}
    assert result.evaluation["accuracy"] == pytest.approx(1.0)
    assert result.steps["labelled"].kind == "dataset"
    fit_run = tracker.get_run(result.steps["fit_frame"].run_id)
    assert fit_run.tags["conveyor.data.inputs"] == "data:/labelled@1"
    again = cp.run(module.from_dataset, tracker=tracker)
    assert sorted(again.cached) == ["fit_frame", "score"]
    csv.write_text("\n".join(rows[:40]) + "\n")
    cd.add(csv, name="labelled", tracker=tracker)
    newer = cp.run(module.from_dataset, params={"ref": "labelled@2"}, tracker=tracker)
    assert newer.ok and newer.cached == []


def test_a_failing_step_reports_its_traceback(pipes: Any, tracker: Any) -> None:
    import conveyor.pipelines as cp

    module = pipes(MODELS)
    result = cp.run(module.failing, tracker=tracker)
    assert not result.ok
    assert result.steps["explode"].status == "FAILED" and "broken on purpose: 20" in (result.steps["explode"].error or "")
    assert result.steps["after"].status == "SKIPPED"
    run = tracker.get_run(result.steps["explode"].run_id)
    assert run.status.value == "FAILED" and "Traceback" in (run.error or "") and "ValueError" in (run.error or "")
    assert tracker.get_run(result.run_id).status.value == "FAILED"


def test_cli_pipeline_run(pipes: Any, mode: str, mode_root: Path) -> None:
    from typer.testing import CliRunner

    from conveyor.cli import app

    ref = f"{pipes(MODELS).__name__}:regression"
    runner = CliRunner()
    first = runner.invoke(app, ["pipeline", "run", ref, "-p", "k=4", "--json"])
    assert first.exit_code == 0, first.output
    out = json.loads(first.output)
    assert out["status"] == "FINISHED"
    second = runner.invoke(app, ["pipeline", "run", ref, "-p", "k=4", "--json"])
    assert second.exit_code == 0, second.output
    assert all(s["cached"] for s in json.loads(second.output)["steps"].values())
    if mode == "remote":
        assert "[server]" in (mode_root / "conveyor.toml").read_text()
        assert not (mode_root / ".conveyor").exists()  # no store opened on the client


def test_cli_pipeline_sweep(pipes: Any, mode_root: Path) -> None:
    from typer.testing import CliRunner

    from conveyor.cli import app

    ref = f"{pipes(MODELS).__name__}:classify"
    answer = CliRunner().invoke(app, ["pipeline", "sweep", ref, "--grid", "C=0.01,1", "--grid", "n=120",
                                      "--metric", "accuracy", "--maximize", "--json"])
    assert answer.exit_code == 0, answer.output
    out = json.loads(answer.output)
    assert len(out["points"]) == 2 and all(p["status"] == "FINISHED" for p in out["points"]), out


def test_ray_is_not_refused_in_remote_mode_and_an_unreachable_cluster_is_clear(pipes: Any, tracker: Any) -> None:
    """Remote mode goes on to join the cluster (tests/pipelines/test_ray_remote.py runs on a
    real one); a cluster that is not there is reported before anything is recorded."""
    import socket

    import conveyor.pipelines as cp
    from conveyor.errors import ServiceUnavailable

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"
    module = pipes(MODELS)
    with pytest.raises(ServiceUnavailable, match=f"no Ray cluster answers at {address}"):
        cp.run(module.regression, executor="ray", ray_address=address, tracker=tracker)
    with pytest.raises(ServiceUnavailable, match=f"no Ray cluster answers at {address}"):
        cp.sweep(module.regression, {"k": [1, 2]}, metric="loss", executor="ray", ray_address=address,
                 tracker=tracker)
    assert tracker.search_runs(output="runs") == []  # nothing started


def test_a_user_without_edit_gets_403(pipes: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import conveyor.pipelines as cp
    from conveyor.blobs import BlobStore
    from conveyor.server import Users, create_app
    from conveyor.settings import ServerSettings, TrackingSettings
    from conveyor.store import Store
    from conveyor.tracking import Tracker
    from conveyor.tracking._remote import AccessDenied

    monkeypatch.chdir(tmp_path)
    store = Store.open(f"sqlite:///{tmp_path / 'server.db'}", create=True)
    blobs = BlobStore.open(tmp_path / "artifacts")
    blobs.init()
    behind = Tracker(store, blobs, TrackingSettings(flush_interval=0.05))
    users = Users(store)
    for name in ("ana", "bob"):
        users.add(name)
    tokens = {name: users.create_token(name, "t") for name in ("ana", "bob")}
    server = ThreadServer(create_app(behind, auth=True, users=users,
                                     server=ServerSettings(default_role="none"))).start()
    from conveyor.tracking._remote import RemoteTracker

    clients = {n: RemoteTracker(ServerSettings(url=server.url, token=tokens[n], retry_seconds=3.0, timeout=10.0),
                                TrackingSettings(flush_interval=0.05), spool_dir=tmp_path / n) for n in tokens}
    try:
        module = pipes(MODELS)
        done = cp.run(module.regression, tracker=clients["ana"])
        assert done.ok, {n: s.error for n, s in done.steps.items()}
        experiment = clients["ana"].get_run(done.run_id).experiment_id
        users.grant("bob", "experiment", str(experiment), "read", by="ana")
        assert clients["bob"].get_run(done.run_id).status.value == "FINISHED"  # bob reads
        headers = {"authorization": f"Bearer {tokens['bob']}"}
        step = done.steps["points"]
        for method, path, body in (
            ("POST", f"/pipelines/runs/{done.run_id}/steps",
             {"step": "x", "cache_key": "k", "cache": "miss"}),
            ("PATCH", f"/pipelines/runs/{done.run_id}/steps/{step.run_id}", {"status": "FINISHED"}),
            ("POST", f"/pipelines/runs/{done.run_id}/cache-lookup", {"step": "x", "cache_key": "k", "outputs": []}),
            ("POST", f"/pipelines/runs/{done.run_id}/blobs/missing", {"digests": []}),
            ("POST", f"/pipelines/runs/{done.run_id}/contract", {}),
        ):
            answer = httpx.request(method, f"{server.url}/api/v1{path}", json=body, headers=headers)
            assert answer.status_code == 403, answer.text
            assert answer.json()["error"]["code"] == "FORBIDDEN"
        with pytest.raises(AccessDenied):  # bob's own pipeline run in ana's experiment
            cp.run(module.regression, tracker=clients["bob"], experiment="regression")
        # bob may read the outputs, but only objects of that pipeline run
        digest = step.outputs["output"]["digest"]
        ok = httpx.get(f"{server.url}/api/v1/pipelines/runs/{done.run_id}/blobs/{digest}", headers=headers)
        assert ok.status_code == 200
        other = blobs.put_bytes(b"not part of the run")
        refused = httpx.get(f"{server.url}/api/v1/pipelines/runs/{done.run_id}/blobs/{other.digest}", headers=headers)
        assert refused.status_code == 404
        # a retried write with the same Idempotency-Key takes effect once
        ana_headers = {"authorization": f"Bearer {tokens['ana']}"}
        opened = [httpx.post(f"{server.url}/api/v1/pipelines/runs/{done.run_id}/steps",
                             json={"step": "extra", "cache_key": "blake3:retry", "cache": "miss", "params": {"a": 1}},
                             headers={**ana_headers, "Idempotency-Key": "open-once"}) for _ in range(2)]
        assert [o.status_code for o in opened] == [201, 201]
        assert opened[0].json()["run_id"] == opened[1].json()["run_id"]
        children = [r for r in clients["ana"].search_runs("regression", output="runs") if r.parent_id == done.run_id]
        assert sum(r.name == "extra" for r in children) == 1
        extra = opened[0].json()["run_id"]
        ended = [httpx.patch(f"{server.url}/api/v1/pipelines/runs/{done.run_id}/steps/{extra}",
                             json={"status": "FAILED", "error": "stopped"},
                             headers={**ana_headers, "Idempotency-Key": "end-once"}) for _ in range(2)]
        assert [e.status_code for e in ended] == [200, 200]
        again = httpx.patch(f"{server.url}/api/v1/pipelines/runs/{done.run_id}/steps/{extra}",
                            json={"status": "FAILED"}, headers={**ana_headers, "Idempotency-Key": "end-twice"})
        assert again.status_code == 409, again.text
        assert clients["ana"].get_run(extra).status.value == "FAILED"
        missing = httpx.patch(f"{server.url}/api/v1/pipelines/runs/{done.run_id}/steps/{extra}",
                              json={"status": "FINISHED", "outputs": {"o": {"digest": "blake3:" + "0" * 64,
                                                                            "materializer": "json", "type_name": "x"}}},
                              headers=ana_headers)
        assert missing.status_code == 400 and missing.json()["error"]["field"] == "outputs.o.digest"
        # bad input: a 400 naming the field
        bad = httpx.post(f"{server.url}/api/v1/pipelines/runs/{done.run_id}/steps",
                         json={"step": "x", "cache_key": "k", "cache": "sometimes"},
                         headers={"authorization": f"Bearer {tokens['ana']}"})
        assert bad.status_code == 400 and "cache" in str(bad.json()["error"]["field"])
    finally:
        for client in clients.values():
            client.close()
        server.stop()
        behind.close()
