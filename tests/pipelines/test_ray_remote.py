"""Remote mode on a real Ray head: the client's conveyor.toml names only a server that asks
for tokens, the steps run as Ray tasks, and the workers reach the server (never the stores)
with the URL and token the executor puts in each task's argument (not a runtime_env: Ray
logs those). Outputs, logs, what a
step logs and the candidate's model package go through the server; the second run is all
cache hits; a failing step's traceback reaches its run; the token appears in no step log,
no error text and no file of the Ray session."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fixtures.remote import ThreadServer

STEPS = """
import os
import pandas as pd

def _where() -> str:
    import ray
    return "ray-task" if ray.is_initialized() and ray.get_runtime_context().get_task_id() else "not-ray"

@step
def table(k: int) -> pd.DataFrame:
    import numpy as np
    print("table on", _where())
    x = np.arange(40, dtype=float)
    return pd.DataFrame({"x": x, "y": k * x + 1.0})

def _token() -> str:
    # a step that prints a secret it reads: here, the token the test wrote beside the code
    from pathlib import Path
    return (Path(__file__).parent / "token.txt").read_text()

@step
def ridge(table: pd.DataFrame, alpha: float) -> object:
    from sklearn.linear_model import Ridge
    import conveyor
    conveyor.log_param("rows", len(table))
    conveyor.log_metric("train_rows", float(len(table)))
    print("ridge on", _where(), "env token", os.environ.get("CONVEYOR_SERVER_TOKEN"), "printed", _token())
    return Ridge(alpha=alpha).fit(table[["x"]], table["y"])

@step
def tree(table: pd.DataFrame, depth: int) -> object:
    from sklearn.tree import DecisionTreeRegressor
    return DecisionTreeRegressor(max_depth=depth, random_state=0).fit(table[["x"]], table["y"])

@step(metrics=True)
def evaluate(linear: object, forest: object, table: pd.DataFrame) -> dict:
    return {"r2_linear": float(linear.score(table[["x"]], table["y"])),
            "r2_tree": float(forest.score(table[["x"]], table["y"]))}

@pipeline(candidate="ridge", evaluation="evaluate")
def models(k: int = 2, alpha: float = 0.001, depth: int = 3):
    rows = table(k=k)
    evaluate(linear=ridge(table=rows, alpha=alpha), forest=tree(table=rows, depth=depth), table=rows)

@step
def leak(table: pd.DataFrame) -> int:
    raise ValueError("broken on purpose, token=" + _token())

@pipeline
def failing():
    leak(table=table(k=1))
"""


@dataclass
class Team:
    root: Path
    token: str
    behind: Any  # the server's own tracker over the stores (checks behind the client's back)
    server: ThreadServer


@pytest.fixture
def team(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Team]:
    """A server that asks for tokens, over stores in their own folder; the client project
    names only its URL, and the token comes from CONVEYOR_SERVER_TOKEN."""
    import os

    from conveyor.models import set_trust
    from conveyor.server import Users, create_app
    from conveyor.settings import Settings
    from conveyor.tracking import Tracker, set_tracker

    for key in list(os.environ):
        if key.startswith("CONVEYOR_") and key not in ("CONVEYOR_REQUIRE_SERVICES", "CONVEYOR_TEST_POSTGRES"):
            monkeypatch.delenv(key)
    stores = tmp_path / "server"
    stores.mkdir()
    (stores / "conveyor.toml").write_text("", encoding="utf-8")
    behind = Tracker.from_settings(Settings.load(stores, env={}), create=True, remote=False)
    users = Users(behind.store)
    users.add("ana")
    token = users.create_token("ana", "ray")
    server = ThreadServer(create_app(behind, auth=True, users=users)).start()
    root = tmp_path / "project"
    root.mkdir()
    (root / "conveyor.toml").write_text(
        f'[tracking]\nflush_interval = 0.05\n[server]\nurl = "{server.url}"\nretry_seconds = 5\n', encoding="utf-8")
    monkeypatch.chdir(root)
    monkeypatch.setenv("CONVEYOR_SERVER_TOKEN", token)
    set_tracker(None)
    set_trust(None)
    try:
        yield Team(root, token, behind, server)
    finally:
        set_tracker(None)
        set_trust(None)
        server.stop()
        behind.close()


def _ray_session_files() -> list[Path]:
    """Every file of the Ray session this process joined (its logs, the runtime_env agent's)."""
    import ray

    session = Path(ray._private.worker.global_worker.node.get_session_dir_path())  # noqa: SLF001
    return [p for p in session.rglob("*") if p.is_file() and not p.is_symlink()]


@pytest.mark.ray
@pytest.mark.slow
def test_ray_steps_go_through_the_server_in_remote_mode(ray_cluster: str, pipes: Any, team: Team) -> None:
    import conveyor.pipelines as cp
    from conveyor.tracking import get_tracker
    from conveyor.tracking._remote import RemoteTracker

    tracker = get_tracker()
    assert isinstance(tracker, RemoteTracker) and tracker.server.token == team.token
    module = pipes(STEPS)
    (module.__conveyor_folder__ / "token.txt").write_text(team.token, encoding="utf-8")
    first = cp.run(module.models, executor="ray", ray_address=ray_cluster, tracker=tracker)
    assert first.ok, {n: s.error for n, s in first.steps.items()}
    assert first.cached == []
    assert first.evaluation["r2_linear"] == pytest.approx(1.0) and 0.5 < first.evaluation["r2_tree"] < 1.0
    parent = tracker.get_run(first.run_id)
    assert parent.tags["conveyor.executor"] == "ray"
    # the outputs came back through the server: a table and two kinds of model
    rows = first.load("table", tracker=tracker)
    assert list(rows.columns) == ["x", "y"] and len(rows) == 40
    assert first.load("ridge", tracker=tracker).predict(rows[["x"]][:1])[0] == pytest.approx(1.0, abs=1e-3)
    assert type(first.load("tree", tracker=tracker)).__name__ == "DecisionTreeRegressor"
    # the step ran in a Ray task (whose environment has no token), logged to its run, and
    # the token it printed is masked in its log
    ridge_run = tracker.get_run(first.steps["ridge"].run_id)
    assert ridge_run.params["rows"] == "40" and ridge_run.metrics["train_rows"] == 40.0
    log = tracker.read_artifact(ridge_run.id, "logs/step.log").decode()
    assert "ridge on ray-task env token None printed ***" in log and team.token not in log
    assert "table on ray-task" in tracker.read_artifact(first.steps["table"].run_id, "logs/step.log").decode()
    # the candidate's model package was written by the Ray worker, through the server
    assert first.candidate == f"runs:/{ridge_run.id}/model"
    assert any(a.path.startswith("model") for a in team.behind.list_artifacts(ridge_run.id))
    # the objects are in the server's stores, the client opened none
    from conveyor.blobs import Digest

    assert team.behind.blobs.exists(Digest.parse(first.steps["tree"].outputs["output"]["digest"]))
    assert not (team.root / ".conveyor").exists()

    again = cp.run(module.models, executor="ray", ray_address=ray_cluster, tracker=tracker)
    assert again.ok and sorted(again.cached) == ["evaluate", "ridge", "table", "tree"]
    assert again.evaluation == first.evaluation
    assert tracker.get_run(again.steps["tree"].run_id).tags["conveyor.cached_from"] == first.steps["tree"].run_id

    changed = cp.run(module.models, params={"depth": 1}, executor="ray", ray_address=ray_cluster, tracker=tracker)
    assert changed.ok and sorted(changed.cached) == ["ridge", "table"]
    assert changed.evaluation["r2_tree"] < first.evaluation["r2_tree"]

    failed = cp.run(module.failing, executor="ray", ray_address=ray_cluster, tracker=tracker)
    assert not failed.ok and failed.steps["leak"].status == "FAILED"
    error = failed.steps["leak"].error or ""
    assert "broken on purpose, token=***" in error and team.token not in error
    leak_run = tracker.get_run(failed.steps["leak"].run_id)
    assert leak_run.status.value == "FAILED"
    assert "Traceback" in (leak_run.error or "") and "ValueError: broken on purpose" in (leak_run.error or "")
    assert team.token not in (leak_run.error or "")
    parent_error = tracker.get_run(failed.run_id).error or ""
    assert "broken on purpose" in parent_error and team.token not in parent_error
    # nothing of the Ray session (worker logs, runtime_env agent logs) holds the token
    token = team.token.encode()
    leaked = [str(p) for p in _ray_session_files() if token in p.read_bytes()]
    assert leaked == []


@pytest.mark.ray
@pytest.mark.slow
def test_cli_pipeline_run_on_ray_in_remote_mode(ray_cluster: str, pipes: Any, team: Team) -> None:
    from typer.testing import CliRunner

    from conveyor.cli import app

    module = pipes(STEPS)
    (module.__conveyor_folder__ / "token.txt").write_text(team.token, encoding="utf-8")
    ref = f"{module.__name__}:models"
    args = ["pipeline", "run", ref, "-p", "k=5", "--executor", "ray", "--ray-address", ray_cluster, "--json"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    out = json.loads(first.output)
    assert out["status"] == "FINISHED" and not any(s["cached"] for s in out["steps"].values())
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0, second.output
    assert all(s["cached"] for s in json.loads(second.output)["steps"].values())
    assert team.token not in first.output + second.output
    runs = team.behind.search_runs("models", output="runs")
    assert {r.tags.get("conveyor.executor") for r in runs if r.parent_id is None} == {"ray"}
    assert not (team.root / ".conveyor").exists()


def test_local_steps_mask_the_token_too(pipes: Any, team: Team) -> None:
    import conveyor.pipelines as cp
    from conveyor.tracking import get_tracker

    tracker = get_tracker()
    module = pipes(STEPS)
    (module.__conveyor_folder__ / "token.txt").write_text(team.token, encoding="utf-8")
    failed = cp.run(module.failing, executor="local", tracker=tracker)
    assert failed.steps["leak"].status == "FAILED"
    error = failed.steps["leak"].error or ""
    assert "broken on purpose, token=***" in error and team.token not in error
    run = tracker.get_run(failed.steps["leak"].run_id)
    assert "Traceback" in (run.error or "") and team.token not in (run.error or "")
