"""Continuous training through ``conveyor monitor run``, end to end on a real project.

A training pipeline module lives in the project (``training.py``: one step that fits a
LogisticRegression on the newest version of data set ``train`` and logs it with
``conveyor.models.log``; the pipeline declares that step its candidate); the
champion v1 is trained, gated and promoted first; its served traffic then shifts. The CLI
(in-process and as a real ``python -m conveyor`` subprocess) must store the evaluation and
the alert, record a retraining trigger linked alert → trigger → pipeline run → new version,
evaluate the gate on that version and move ``@champion`` only when the gate passed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conveyor.cli import app

MODEL = "churn"
runner = CliRunner()
pytestmark = pytest.mark.slow  # ~10 s each: a pipeline step process, a served model, a gate

TRAINING = textwrap.dedent('''
    """The project's training pipeline, run by `conveyor monitor` on a retraining trigger."""
    from conveyor.pipelines import dataset, pipeline, step


    @step
    def fit(frame) -> dict:
        import conveyor
        import conveyor.models
        from sklearn.linear_model import LogisticRegression

        features = frame[["a", "b"]]
        model = LogisticRegression(max_iter=300).fit(features, frame["y"])
        # logged to the step's own run: the candidate the pipeline declares below
        conveyor.log_metric("train_accuracy", float(model.score(features, frame["y"])))
        conveyor.models.log(model, "model", input_example=features.head(3))
        return {"rows": len(frame)}


    @step
    def explode(frame) -> dict:
        raise RuntimeError("feature store unreachable")


    @pipeline(candidate="fit")
    def retrain():
        fit(dataset("train"))


    @pipeline(candidate="explode")
    def broken():
        explode(dataset("train"))


    @pipeline
    def undeclared():
        fit(dataset("train"))
''')


def frame(n: int, shifted: bool, seed: int) -> pd.DataFrame:
    """Two features and a label; ``shifted`` moves both inputs and changes the concept."""
    rng = np.random.default_rng(seed)
    a = rng.normal(3.0 if shifted else 0.0, 1.0, n)
    b = rng.normal(-2.0 if shifted else 0.0, 1.0, n)
    y = (a - b > 5.0) if shifted else (a + b > 0.0)
    return pd.DataFrame({"a": a, "b": b, "y": y.astype(int)})


@pytest.fixture
def loop_project(project: Path, stores: Any, mode: str, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """The project with training.py, gates, a monitor, champion v1 and a shifted window.

    ``make(pipeline=, gate=)`` picks the monitor's pipeline and gate; afterwards
    ``train@2`` (the newest data, shifted and labelled) exists for the retraining. In remote
    mode the set-up (data sets, champion, served traffic) is written on the server's stores.
    """
    monkeypatch.setitem(_SIDE, "stores", stores if mode == "remote" else None)
    monkeypatch.delitem(sys.modules, "training", raising=False)  # each project has its own module
    monkeypatch.setattr(sys, "path", list(sys.path))

    def make(pipeline: str = "retrain", gate: str = "lenient") -> Path:
        import conveyor.data
        from conveyor.registry import Registry
        from conveyor.tracking import get_tracker

        (project / "training.py").write_text(TRAINING, encoding="utf-8")
        with (project / "conveyor.toml").open("a", encoding="utf-8") as f:
            f.write(textwrap.dedent(f'''
                [pipelines]
                experiment = "continuous-training"
                max_workers = 1

                [gates.lenient]
                model = "{MODEL}"
                label = "y"
                data = "data:/holdout@1"
                metrics = ["accuracy >= 0.55"]
                data_checks = false

                [gates.strict]
                model = "{MODEL}"
                label = "y"
                data = "data:/holdout@1"
                metrics = ["accuracy >= 0.55", "accuracy >= champion.accuracy + 0.9"]
                data_checks = false

                [monitors.drift]
                model = "{MODEL}"
                reference = "data:/train@1"
                target = "y"
                window = "1h"
                rules = ["drift_share > 0.3"]
                retrain = true
                pipeline = "training:{pipeline}"
                gate = "{gate}"
                cooldown = "1h"
            '''))
        t = stores
        conveyor.data.add(frame(300, False, 1), name="train", tracker=t)
        # the gate's held-out rows, mostly new customers: v1 passes the threshold, and v2 is
        # clearly better than v1 (the default paired comparison must not veto it)
        holdout = pd.concat([frame(50, False, 5), frame(150, True, 2)], ignore_index=True)
        conveyor.data.add(holdout, name="holdout", tracker=t)
        _champion(t)
        _serve_shifted_traffic(t)
        conveyor.data.add(frame(300, True, 3), name="train", tracker=t)  # the newest data: train@2
        registry = Registry(t)
        assert registry.get(f"models:/{MODEL}@champion").version == 1
        if mode == "embedded":
            t.close()
        return project

    def _champion(t: Any) -> None:
        from conveyor.cli._pipeline import load_pipeline
        from conveyor.gates import evaluate, promote
        from conveyor.pipelines import train_candidate
        from conveyor.registry import Registry

        # v1 comes from the same pipeline, on train@1: champion by the lenient gate
        result = train_candidate(load_pipeline("training:retrain"), tracker=t)
        registry = Registry(t)
        registry.register(result.candidate, MODEL)
        assert evaluate("lenient", f"models:/{MODEL}/1", registry=registry).passed
        promote(MODEL, 1, registry=registry, reason="first model")

    def _serve_shifted_traffic(t: Any) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from starlette.testclient import TestClient
        from conveyor.serving import ServingConfig, create_app

        traffic = frame(240, True, 4)
        served = create_app([f"models:/{MODEL}@champion"], tracker=t,
                            config=ServingConfig(access_log=False, log_flush_s=0.05))
        with TestClient(served) as client:
            for start in range(0, len(traffic), 40):
                part = traffic.iloc[start:start + 40]
                rid = f"req-{start}"
                answer = client.post("/invocations", headers={"x-request-id": rid}, json={
                    "dataframe_split": {"columns": ["a", "b"], "data": part[["a", "b"]].to_numpy().tolist()}})
                assert answer.status_code == 200, answer.text
                client.post(f"/v2/models/{MODEL}/feedback",
                            json={"request_id": rid, "labels": part["y"].tolist()}).raise_for_status()
        # leaving the client stops the app, whose log writer flushes what is left

    return make


def _monitor(*args: str) -> Any:
    return runner.invoke(app, ["monitor", *args])


#: the server's stores in remote mode (set by ``loop_project``), else None: the project's
_SIDE: dict[str, Any] = {"stores": None}


def _stored() -> dict[str, Any]:
    from conveyor.gates import evaluations
    from conveyor.registry import Registry
    from conveyor.store import MonitoringRepo
    from conveyor.tracking import get_tracker

    t = _SIDE["stores"] or get_tracker()
    repo = MonitoringRepo()
    with t.store.read() as conn:
        out: dict[str, Any] = {"evaluations": repo.evaluations(conn, model=MODEL),
                               "alerts": repo.alerts(conn, model=MODEL), "triggers": repo.triggers(conn, model=MODEL)}
    registry = Registry(t)
    versions = sorted(v.version for v in registry.list_versions(MODEL))
    out["champion"] = registry.get(f"models:/{MODEL}@champion").version
    out["versions"] = versions
    out["gated"] = {v: [e.passed for e in evaluations(registry, MODEL, v)] for v in versions}
    out["tracker"] = t
    return out


def _history_triggers() -> list[dict[str, Any]]:
    result = _monitor("history", "--show", "triggers", "--json")
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = json.loads(result.output)
    return rows


@pytest.fixture(autouse=True)
def _fresh_tracker() -> Iterator[None]:
    yield
    from conveyor.tracking import get_tracker, set_tracker

    get_tracker().close()
    set_tracker(None)


@pytest.mark.parametrize("gate", ["lenient", "strict"])
def test_alert_retrains_gates_and_promotes_only_on_pass(loop_project, gate):
    loop_project(gate=gate)
    result = _monitor("run", "--json")
    assert result.exit_code == 1, result.output  # an alert fired
    (evaluation,) = json.loads(result.output)
    assert evaluation["status"] == "alert" and evaluation["version"] == "1"
    assert evaluation["metrics"]["drift_share"] > 0.3
    (alert_id,) = evaluation["alerts"]
    (trig,) = evaluation["triggers"]
    passed = gate == "lenient"
    assert trig["status"] == ("promoted" if passed else "rejected"), trig["decision"]
    assert trig["reason"] == "alert" and trig["alert_id"] == alert_id and trig["candidate_version"] == 2

    s = _stored()
    assert [e.id for e in s["evaluations"]] == [evaluation["id"]] and s["evaluations"][0].status == "alert"
    assert [(a.id, a.kind, a.evaluation_id) for a in s["alerts"]] == [(alert_id, "rule", evaluation["id"])]
    run = s["tracker"].get_run(trig["run_id"])  # the pipeline run, tagged with its trigger
    assert run.tags["conveyor.retrain_trigger"] == str(trig["id"])
    assert run.experiment == "continuous-training"  # the project's [pipelines] table applies
    assert s["versions"] == [1, 2]
    assert s["gated"][2] == [passed]  # the gate ran on the new version, once
    assert s["champion"] == (2 if passed else 1)
    from conveyor.registry import Registry

    assert Registry(s["tracker"]).get_version(MODEL, 2).data_versions == ("data:/train@2",)

    (row,) = _history_triggers()
    assert (row["id"], row["alert_id"], row["run_id"], row["candidate_version"], row["status"]) == (
        trig["id"], alert_id, trig["run_id"], 2, trig["status"])


def test_failing_pipeline_keeps_the_champion_and_alerts(loop_project):
    loop_project(pipeline="broken")
    result = _monitor("run", "--json")
    assert result.exit_code == 1, result.output
    (trig,) = json.loads(result.output)[0]["triggers"]
    assert trig["status"] == "failed" and "feature store unreachable" in trig["decision"], trig
    assert "step 'explode' failed" in trig["decision"] and "the champion stays" in trig["decision"]
    s = _stored()
    assert s["champion"] == 1 and s["versions"] == [1]
    kinds = sorted(a.kind for a in s["alerts"])
    assert kinds == ["retrain_failed", "rule"]
    failed = next(a for a in s["alerts"] if a.kind == "retrain_failed")
    assert f"trigger {trig['id']}" in failed.message
    assert _history_triggers()[0]["status"] == "failed"


def test_a_pipeline_without_a_declared_candidate_fails_naming_what_to_add(loop_project):
    loop_project(pipeline="undeclared")
    (trig,) = json.loads(_monitor("run", "--json").output)[0]["triggers"]
    assert trig["status"] == "failed" and "declares no candidate" in trig["decision"], trig
    assert _stored()["versions"] == [1]


def test_second_alert_after_a_failure_waits_for_the_backoff_not_the_cooldown(loop_project):
    loop_project(pipeline="broken")
    first = json.loads(_monitor("run", "--json").output)[0]
    second_run = _monitor("run", "--json")
    assert second_run.exit_code == 1, second_run.output
    second = json.loads(second_run.output)[0]
    assert first["status"] == second["status"] == "alert"
    failed = first["triggers"][0]
    assert failed["status"] == "failed" and failed["run_id"], failed  # the failed pipeline run is recorded
    assert _stored()["tracker"].get_run(failed["run_id"]).tags["conveyor.retrain_trigger"] == str(failed["id"])
    (skipped,) = second["triggers"]
    # a failure starts the (5 min) backoff, not the 1 h cool-down meant for completed retrainings
    assert skipped["status"] == "skipped" and skipped["decision"].startswith("backoff"), skipped["decision"]
    assert skipped["run_id"] is None and skipped["alert_id"] == second["alerts"][0]
    rows = _history_triggers()
    assert [r["status"] for r in rows] == ["skipped", "failed"]
    s = _stored()
    assert [a.kind for a in s["alerts"]].count("retrain_failed") == 1  # one retraining, one failure

    by_hand = _monitor("retrain", "drift")  # the command obeys the backoff too…
    assert by_hand.exit_code == 0 and "skipped" in by_hand.output and "backoff" in by_hand.output
    forced = _monitor("retrain", "drift", "--force")  # …unless forced
    assert forced.exit_code == 1 and "failed" in forced.output, forced.output
    assert [(r["reason"], r["status"]) for r in _history_triggers()[:2]] == [("command", "failed"),
                                                                            ("command", "skipped")]


def test_monitor_run_as_a_subprocess(loop_project):
    folder = loop_project()
    proc = subprocess.run([sys.executable, "-m", "conveyor", "monitor", "run", "--json"], cwd=folder,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (evaluation,) = json.loads(proc.stdout)
    (trig,) = evaluation["triggers"]
    assert trig["status"] == "promoted" and trig["candidate_version"] == 2, trig
    s = _stored()
    assert s["champion"] == 2 and s["gated"][2] == [True]
    (row,) = _history_triggers()
    assert (row["alert_id"], row["run_id"]) == (evaluation["alerts"][0], trig["run_id"])

    # a forced retraining runs every step again (no cache hit), registers version 3 and gates it
    again = _monitor("retrain", "drift", "--force")
    assert "registered no new version" not in again.output, again.output
    assert 3 in _stored()["gated"]
