"""Remote mode of the read commands: a client folder whose conveyor.toml names only a
server reads the data sets, lineage, prediction log and monitoring history that the server's
stores hold (the records of fixtures/api_world.py: two model kinds, two data sets, a
pipeline, served predictions with feedback, a monitor's drift alert and its retraining)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fixtures.api_world import World
from fixtures.remote import serve


@pytest.fixture(scope="module")
def server_url(api_world: World) -> Iterator[str]:
    with serve(api_world.tracker) as server:
        yield server.url


@pytest.fixture
def client(server_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    from conveyor.tracking import set_tracker

    for key in list(os.environ):
        if key.startswith("CONVEYOR_") and key not in ("CONVEYOR_REQUIRE_SERVICES", "CONVEYOR_TEST_POSTGRES"):
            monkeypatch.delenv(key)
    folder = tmp_path / "client"
    folder.mkdir()
    (folder / "conveyor.toml").write_text(f'[server]\nurl = "{server_url}"\nretry_seconds = 2\n', encoding="utf-8")
    monkeypatch.chdir(folder)
    set_tracker(None)
    yield folder
    set_tracker(None)
    # the stat cache of `data add` (local file hashes) is the only database a remote client keeps
    stores = [p for p in folder.rglob("*.db") if p.name != "data-cache.db"]
    assert not stores, "a remote client must not open a store of its own"


def cli(*args: str) -> Any:
    from conveyor.cli import app

    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def as_json(*args: str) -> Any:
    result = cli(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_data_commands(client: Path, api_world: World) -> None:
    import conveyor.data as cd

    listed = as_json("data", "list")
    assert [(d["name"], d["version"]) for d in listed] == [("churn", 2), ("iris", 2)]
    shown = as_json("data", "show", "iris@1")
    embedded = cd.get_version("iris@1", tracker=api_world.tracker)
    assert shown["profile"]["rows"] == 100 and shown["digest"] == embedded.digest and shown["versions"] == [1, 2]
    assert shown["profile"]["columns"]["petal_length"]["mean"] == pytest.approx(
        embedded.profile["columns"]["petal_length"]["mean"])
    assert any(e["downstream"] == f"runs:/{api_world.runs['iris-clf/1']}" for e in shown["lineage"]["downstream"])
    text = cli("data", "show", "churn")
    assert text.exit_code == 0 and "data:/churn@2" in text.output and "income" in text.output
    d = as_json("data", "diff", "iris@1", "iris@2")
    assert d == json.loads(json.dumps(cd.diff("iris@1", "iris@2", tracker=api_world.tracker).to_dict()))
    checked = as_json("data", "validate", "iris@2")
    assert checked["anomalies"] == [a.to_dict() for a in cd.validate("iris@2", tracker=api_world.tracker)]
    schema = cli("data", "schema", "churn@1")
    assert schema.exit_code == 0 and "[columns.age]" in schema.output
    graph = as_json("lineage", "models:/churn-rf/2", "--direction", "up")
    assert f"runs:/{api_world.runs['churn-rf/2']}" in {e["upstream"] for e in graph["upstream"]}
    assert cli("data", "show", "nope@1").exit_code == 3
    assert cli("data", "validate", "iris@2", "--schema", "x.toml").exit_code == 3  # no such file
    assert cli("data", "schema", "iris@1", "--out", "iris.toml").exit_code == 0
    here = json.loads(cli("data", "validate", "iris@2", "--schema", "iris.toml", "--json").output)  # downloads iris@2
    there = cd.validate("iris@2", schema=Path("iris.toml"), tracker=api_world.tracker)
    assert here["anomalies"] == [a.to_dict() for a in there]


def test_models_commands_over_two_model_kinds(client: Path) -> None:
    models = {m["name"]: m for m in as_json("models", "list")}
    assert models["iris-clf"]["aliases"] == {"champion": 2} and models["churn-rf"]["aliases"] == {"champion": 2}
    moves = as_json("models", "history", "churn-rf", "--alias", "champion")
    assert [(e["from_value"], e["to_value"], e["user"]) for e in moves] == [(None, "1", "alice"), ("1", "2", "carol")]
    assert moves[1]["evaluation_id"]
    version = as_json("models", "show", "iris-clf/2")
    assert version["data_versions"] == ["data:/iris@2"] and version["tags"] == {"C": "1.0"}


def test_monitor_history_and_performance(client: Path, api_world: World) -> None:
    evaluations = as_json("monitor", "history", "--model", "churn-rf")
    assert [(e["id"], e["status"], e["version"]) for e in evaluations] == [(api_world.monitor_evaluation_id, "alert", "2")]
    assert evaluations[0]["drift_share"] > 0.3
    alerts = as_json("monitor", "history", "--show", "alerts")
    assert [a["id"] for a in alerts] == list(api_world.alert_ids) and alerts[0]["rule"] == "drift_share > 0.3"
    triggers = as_json("monitor", "history", "--show", "triggers", "--model", "churn-rf")
    assert [(t["reason"], t["run_id"], t["candidate_version"]) for t in triggers] == \
        [("alert", api_world.retrain_run_id, 3)]
    performance = as_json("monitor", "performance", "churn-rf", "--every", "1d")
    [window] = performance["windows"]
    assert (window["version"], window["rows"], window["labelled_rows"]) == ("2", 60, 30)
    assert "accuracy" in performance["offline"]["2"]


def test_prediction_log_reads_the_same_rows_remotely(client: Path, api_world: World) -> None:
    from conveyor.serving import read_feedback, read_prediction_log
    from conveyor.tracking import get_tracker

    remote = get_tracker()
    assert getattr(remote, "http", None) is not None
    here = read_prediction_log("churn-rf", with_feedback=True, tracker=remote)
    there = read_prediction_log("churn-rf", with_feedback=True, tracker=api_world.tracker)
    assert list(here.columns) == list(there.columns) and len(here) == len(there) == 60
    assert here["request_id"].tolist() == there["request_id"].tolist()
    assert here["age"].tolist() == pytest.approx(there["age"].tolist())
    assert (here["timestamp"] == there["timestamp"]).all()
    assert here["label"].isna().sum() == there["label"].isna().sum() == 30
    assert len(read_feedback("churn-rf", tracker=remote)) == 30
    assert len(read_prediction_log("churn-rf", version=1, tracker=remote)) == 0


def test_pipeline_runs_command(client: Path, api_world: World) -> None:
    rows = as_json("pipeline", "runs")
    assert [(r["run_id"], r["pipeline"], r["status"], r["steps"], r["cached"]) for r in rows] == \
        [(api_world.pipeline_run_id, "numbers", "FINISHED", 2, 0)]
    assert as_json("pipeline", "runs", "--pipeline", "other") == []
    assert cli("pipeline", "runs").exit_code == 0


def test_data_writes_go_through_the_server_not_a_local_store(client: Path, api_world: World) -> None:
    import pandas as pd

    import conveyor.data as cd

    frame = pd.DataFrame({"a": [1, 2]})
    added = cd.add(frame, name="from-laptop")
    assert (added.ref, added.created, added.profile["rows"]) == ("data:/from-laptop@1", True, 2)
    assert cd.get_version("from-laptop@1", tracker=api_world.tracker).digest == added.digest  # on the server
    pd.testing.assert_frame_equal(cd.load("from-laptop@1"), frame)
    (client / "rows.csv").write_text("a\n1\n", encoding="utf-8")
    result = cli("data", "add", "rows.csv", "--name", "from-laptop")
    assert result.exit_code == 0 and "added data:/from-laptop@2" in result.output, result.output
    assert cli("data", "get", "from-laptop@2", "copy.csv").exit_code == 0
    assert (client / "copy.csv").read_text() == "a\n1\n"
