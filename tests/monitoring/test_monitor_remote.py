"""``conveyor monitor`` commands in both modes (embedded, and remote through a real server with
no store credentials on the client), and the server's monitoring endpoints' permissions and
bad input: 403 for a caller who may not edit the model or read the reference data set, 400
with the one error shape for a bad monitor config."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

import conveyor.data
from conveyor.cli import app
from fixtures.remote import ThreadServer

runner = CliRunner()


def _invoke(*args: str) -> Any:
    return runner.invoke(app, ["monitor", *args])


def _window(make_frame: Any, shift: float, seed: int = 2) -> Any:
    frame = make_frame(n=800, shift=shift, seed=seed)
    frame["prediction"] = (frame.age > 45).astype(int)
    frame["label"] = frame.pop("churned")
    frame["latency_ms"] = 5.0
    return frame


def test_drift_between_data_set_versions_and_a_local_file(project: Path, stores: Any, make_frame: Any) -> None:
    ref = conveyor.data.add(make_frame(seed=1), name="train", tracker=stores).ref
    moved = conveyor.data.add(make_frame(seed=3, shift=1.0), name="live", tracker=stores).ref
    calm = _invoke("drift", ref, ref, "--json")
    assert calm.exit_code == 0, calm.output
    assert json.loads(calm.output)["dataset_drift"] is False
    shifted = _invoke("drift", ref, moved, "--target", "churned", "--html", "drift.html", "--json")
    assert shifted.exit_code == 1, shifted.output
    report = json.loads(shifted.output)
    assert report["n_features"] == 2 and report["label_drift"]["column"] == "churned"
    assert {c["column"] for c in report["columns"] if c["drifted"]} >= {"age"}
    page = (project / "drift.html").read_text()
    assert "<svg" in page and "live@1" in page
    make_frame(seed=4, shift=1.0).to_parquet(project / "local.parquet")  # a file only the client has
    mixed = _invoke("drift", ref, "local.parquet", "--columns", "age,plan", "--json")
    assert mixed.exit_code == 1 and json.loads(mixed.output)["n_drifted"] >= 1, mixed.output
    missing = _invoke("drift", "data:/nope@1", ref)
    assert missing.exit_code == 3 and "nope" in missing.output, missing.output


def test_run_report_and_unlock(project: Path, stores: Any, make_frame: Any) -> None:
    from conveyor.monitoring import ContinuousTrainer, MonitorConfig, Monitoring, RetrainOutcome
    from conveyor.tracking import get_tracker

    ref = conveyor.data.add(make_frame(seed=1), name="train", tracker=stores).ref
    config = MonitorConfig(name="m", model="churn", reference=ref, target="churned", rules=["drift_share > 0.3"])
    evaluation = Monitoring(get_tracker()).evaluate(config, current=_window(make_frame, 1.0))
    assert evaluation.status == "alert" and evaluation.drift is not None and evaluation.drift.column("age").drifted
    with (project / "conveyor.toml").open("a") as f:
        f.write(f'\n[monitors.m]\nmodel = "churn"\nreference = "{ref}"\ntarget = "churned"\n')
    report = _invoke("report", "churn", "--html", "report.html", "--json")
    assert report.exit_code == 0, report.output
    page = (project / "report.html").read_text()
    assert "<svg" in page and "churn" in page and "http://" not in page
    assert _invoke("unlock", "m").exit_code == 3  # nothing holds the lock

    started, release = threading.Event(), threading.Event()

    def hook(model: str, trigger_id: int) -> RetrainOutcome:
        started.set()
        release.wait(20)
        return RetrainOutcome(None, None, False, "released")

    trainer = ContinuousTrainer(get_tracker(), hook, cooldown=0, lease=60)
    held = trainer.trigger("churn", "command", background=True)
    assert started.wait(20) and held.status == "running" and held.holder
    busy = trainer.trigger("churn", "command", force=True)
    assert busy.status == "skipped" and "already in flight" in busy.decision  # one in flight, through the server
    unlocked = _invoke("unlock", "churn", "--json")
    assert unlocked.exit_code == 0, unlocked.output
    assert json.loads(unlocked.output)["status"] == "abandoned"
    release.set()
    trainer.wait(20)
    history = _invoke("history", "--show", "triggers", "--json")
    rows = sorted(json.loads(history.output), key=lambda r: r["id"])
    # the unlocked holder ran on (as embedded mode allows) and its outcome is still recorded
    assert [r["status"] for r in rows] == ["rejected", "skipped"] and rows[0]["decision"] == "released", rows


# -- permissions and bad input on the server's endpoints --------------------------------------------------
@pytest.fixture
def team(store: Any, blobs: Any, tmp_path: Path, make_frame: Any) -> Any:
    """A server with authentication: ana may edit model churn and read data set train (not
    secret); bob has the default role (read)."""
    from conveyor.server import Users, create_app
    from conveyor.settings import ServerSettings, TrackingSettings
    from conveyor.tracking import Tracker

    tracker = Tracker(store, blobs, TrackingSettings())
    refs = {n: conveyor.data.add(make_frame(seed=1), name=n, tracker=tracker).ref for n in ("train", "secret")}
    users = Users(tracker.store)
    for name in ("ana", "bob"):
        users.add(name)
    users.grant("ana", "model", "churn", "edit")
    users.grant("ana", "data", "train", "read")
    tokens = {n: users.create_token(n, "t") for n in ("ana", "bob")}
    server = ThreadServer(create_app(tracker, auth=True, users=users,
                                     server=ServerSettings(default_role="none"))).start()
    users.grant("bob", "model", "churn", "read")
    yield server, tokens, refs, tracker
    server.stop()
    tracker.close()


def _client(server: Any, token: str, tmp_path: Path) -> Any:
    from conveyor.settings import ServerSettings, TrackingSettings
    from conveyor.tracking._remote import RemoteTracker

    return RemoteTracker(ServerSettings(url=server.url, token=token, retry_seconds=2.0, timeout=10.0),
                         TrackingSettings(flush_interval=0.05), spool_dir=tmp_path / "spool")


def _post(server: Any, token: str, path: str, body: Any) -> httpx.Response:
    return httpx.post(f"{server.url}/api/v1{path}", json=body, headers={"authorization": f"Bearer {token}"},
                      timeout=30)


def test_evaluating_needs_edit_on_the_model_and_read_on_the_reference(team: Any, tmp_path: Path,
                                                                     make_frame: Any) -> None:
    from conveyor.monitoring import MonitorConfig, Monitoring
    from conveyor.tracking._remote import AccessDenied

    server, tokens, refs, tracker = team
    window = _window(make_frame, 1.0)
    ana, bob = _client(server, tokens["ana"], tmp_path / "a"), _client(server, tokens["bob"], tmp_path / "b")
    try:
        config = MonitorConfig(name="m", model="churn", reference=refs["train"], target="churned",
                               rules=["drift_share > 0.3"])
        assert Monitoring(ana).evaluate(config, current=window).status == "alert"
        with pytest.raises(AccessDenied, match="may not edit model 'churn'"):
            Monitoring(bob).evaluate(config, current=window)  # bob may only read churn
        secret = config.model_copy(update={"reference": refs["secret"]})
        with pytest.raises(AccessDenied, match="may not read data 'secret'"):
            Monitoring(ana).evaluate(secret, current=window)
        other = config.model_copy(update={"model": "price"})
        with pytest.raises(AccessDenied, match="may not edit model 'price'"):
            Monitoring(ana).evaluate(other, current=window)
        from conveyor.monitoring import report_data

        assert report_data(bob, "churn")["evaluation"]["monitor"] == "m"  # reading needs read only
        denied = _post(server, tokens["bob"], "/monitoring/drift",
                       {"reference": {"data": refs["secret"]}, "current": {"data": refs["train"]}})
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "FORBIDDEN"
        lease = _post(server, tokens["bob"], "/monitoring/retrainings",
                      {"model": "churn", "reason": "command", "holder": "h:1"})
        assert lease.status_code == 403
    finally:
        ana.close()
        bob.close()
    with tracker.store.read() as conn:  # the refused calls stored nothing
        from conveyor.store import MonitoringRepo

        assert [e.status for e in MonitoringRepo().evaluations(conn, model="churn")] == ["alert"]


@pytest.mark.parametrize("listed", [False, True])
def test_a_team_server_sends_alerts_only_to_listed_webhook_hosts(store: Any, blobs: Any, tmp_path: Path, make_frame: Any,
                                                                 webhook: Any, listed: bool) -> None:
    """With authentication on, a webhook host must be in [server] webhook_hosts: a user who may
    edit a model cannot make the server POST to whatever it can reach (refused: 400, nothing
    stored, nothing sent)."""
    from conveyor.monitoring import MonitorConfig, Monitoring
    from conveyor.server import Users, create_app
    from conveyor.settings import ServerSettings, TrackingSettings
    from conveyor.store import MonitoringRepo
    from conveyor.tracking import Tracker
    from conveyor.errors import InvalidInput

    tracker = Tracker(store, blobs, TrackingSettings())
    ref = conveyor.data.add(make_frame(seed=1), name="train", tracker=tracker).ref
    users = Users(tracker.store)
    users.add("ana")
    users.grant("ana", "model", "churn", "edit")
    users.grant("ana", "data", "train", "read")
    token = users.create_token("ana", "t")
    settings = ServerSettings(default_role="none", webhook_hosts=("127.0.0.1",) if listed else ())
    server = ThreadServer(create_app(tracker, auth=True, users=users, server=settings)).start()
    ana = _client(server, token, tmp_path)
    try:
        config = MonitorConfig(name="m", model="churn", reference=ref, target="churned", rules=["drift_share > 0.3"],
                               webhook=webhook.url)
        monitoring = Monitoring(ana)
        if listed:
            assert monitoring.evaluate(config, current=_window(make_frame, 1.0)).status == "alert"
            assert monitoring.wait(30) and webhook.posts and webhook.posts[0]["monitor"] == "m"
        else:
            with pytest.raises(InvalidInput, match="may not send alerts to '127.0.0.1'") as refused:
                monitoring.evaluate(config, current=_window(make_frame, 1.0))
            assert refused.value.field == "config.webhook" and "webhook_hosts" in str(refused.value)
            assert webhook.posts == []
            with tracker.store.read() as conn:
                assert MonitoringRepo().evaluations(conn, model="churn") == []
    finally:
        ana.close()
        server.stop()
        tracker.close()


@pytest.mark.parametrize(("body", "field"), [
    ({"config": {"model": "churn", "windwo": "1h"}}, "monitors.m.windwo"),
    ({"config": {"model": "churn", "rules": ["drift_share >>> 1"]}}, None),
    ({"config": {"model": "churn", "reference": "s3://bucket/x"}}, "config.reference"),
    ({"config": {"model": "churn", "name": "other"}}, "config.name"),
    ({"config": {"model": "churn"}, "current": "not parquet"}, "current"),
    ({"config": {"model": "churn", "webhook": "ftp://x"}}, "webhook"),
    ({"config": {"model": "churn"}, "surprise": 1}, None),
])
def test_a_bad_monitor_config_is_a_400_naming_the_field(team: Any, body: dict[str, Any], field: str | None) -> None:
    server, tokens, refs, tracker = team
    answer = _post(server, tokens["ana"], "/monitoring/monitors/m/evaluate", body)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "INVALID" and "Traceback" not in answer.text
    if field is not None:
        assert error["field"] == field, error
    with tracker.store.read() as conn:
        from conveyor.store import MonitoringRepo

        assert MonitoringRepo().evaluations(conn, model="churn") == []  # nothing half-written


def test_bad_drift_and_lease_requests_are_400s(team: Any) -> None:
    server, tokens, refs, _ = team
    both = _post(server, tokens["ana"], "/monitoring/drift",
                 {"reference": {"data": refs["train"], "model": "churn"}, "current": {"data": refs["train"]}})
    assert both.status_code == 400 and both.json()["error"]["field"] == "reference"
    summary = _post(server, tokens["ana"], "/monitoring/drift",
                    {"reference": {"data": refs["train"]}, "current": {"summary": "AAAA"}})
    assert summary.status_code == 400 and summary.json()["error"]["field"] == "current.summary"
    reason = _post(server, tokens["ana"], "/monitoring/retrainings",
                   {"model": "churn", "reason": "whim", "holder": "h"})
    assert reason.status_code == 400
    unknown = _post(server, tokens["ana"], "/monitoring/retrainings/999/finish", {"status": "failed", "decision": "x"})
    assert unknown.status_code == 404


def test_compare_names_data_set_versions_in_both_modes(tracker: Any, server_side: Any, make_frame: Any) -> None:
    from dataclasses import asdict

    from conveyor.monitoring import compare

    ref = conveyor.data.add(make_frame(seed=1), name="train", tracker=server_side).ref
    cur = conveyor.data.add(make_frame(seed=3, shift=1.0), name="live", tracker=server_side).ref
    local = compare(make_frame(seed=1), make_frame(seed=3, shift=1.0), target="churned", method="psi")
    named = compare(ref, cur, tracker=tracker, target="churned", method="psi")
    assert [asdict(c) for c in named.columns] == [asdict(c) for c in local.columns]  # the same statistics
    assert named.dataset_drift and named.drift_share == local.drift_share and named.quality == local.quality
    assert named.current.n_rows == 1500 and set(named.reference.columns) == {"age", "plan", "churned"}
    mixed = compare(ref, make_frame(seed=4), tracker=tracker, columns=["age", "plan"])  # a frame only here
    assert not mixed.dataset_drift and [c.column for c in mixed.columns] == ["age", "plan"]
    from conveyor.errors import InvalidInput

    with pytest.raises(InvalidInput, match="unknown"):
        compare(ref, cur, tracker=tracker, method="unknown")


def test_run_export_and_performance_read_the_servers_prediction_log(project: Path, stores: Any,
                                                                    make_frame: Any) -> None:
    """A regressor served over the stores (the server's in remote mode): `monitor run` evaluates
    its logged traffic, `export` and `performance` read the log — with only a server URL remotely."""
    import warnings

    import pandas as pd
    from sklearn.linear_model import Ridge

    import conveyor.models
    from conveyor.gates import promote
    from conveyor.registry import Registry
    from conveyor.serving import ServingConfig, create_app

    train = make_frame(n=600, seed=1)
    ref = conveyor.data.add(train[["age", "churned"]], name="homes", tracker=stores).ref
    model = Ridge().fit(train[["age"]], train["churned"])
    run = stores.create_run("serve")
    conveyor.models.log(model, "model", input_example=train[["age"]].head(3), run_id=run.id, tracker=stores)
    stores.end_run(run.id)
    registry = Registry(stores)
    version = registry.register(f"runs:/{run.id}/model", "price").version
    promote("price", version, force=True, registry=registry, reason="test")
    live = make_frame(n=200, shift=1.0, seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    served = create_app(["models:/price@champion"], tracker=stores, config=ServingConfig(access_log=False,
                                                                                         log_flush_s=0.05))
    with TestClient(served) as client:
        for start in range(0, len(live), 50):
            part = live.iloc[start:start + 50]
            rid = f"req-{start}"
            answer = client.post("/invocations", headers={"x-request-id": rid}, json={
                "dataframe_split": {"columns": ["age"], "data": part[["age"]].to_numpy().tolist()}})
            assert answer.status_code == 200, answer.text
            client.post("/v2/models/price/feedback",
                        json={"request_id": rid, "labels": part["churned"].tolist()}).raise_for_status()

    with (project / "conveyor.toml").open("a") as f:
        f.write(f'\n[monitors.homes]\nmodel = "price"\nreference = "{ref}"\ntarget = "churned"\n'
                f'rules = ["drift_share > 0.3", "mae > 100"]\n')
    ran = _invoke("run", "--json")
    assert ran.exit_code == 1, ran.output  # the age drift alerts
    (evaluation,) = json.loads(ran.output)
    assert evaluation["status"] == "alert" and evaluation["version"] == str(version)
    assert evaluation["metrics"]["rows"] == 200 and evaluation["metrics"]["labelled_rows"] == 200
    assert evaluation["metrics"]["mae"] is not None and evaluation["metrics"]["mae"] < 100
    assert [r["status"] for r in evaluation["rules"]] == ["fired", "ok"]

    exported = _invoke("export", "price", "--out", "log.parquet", "--json")
    assert exported.exit_code == 0, exported.output
    assert json.loads(exported.output)["rows"] == 200
    log = pd.read_parquet(project / "log.parquet")
    assert len(log) == 200 and log["label"].notna().all()
    assert log["age"].tolist() == pytest.approx(live["age"].tolist())
    performance = _invoke("performance", "price", "--json")
    assert performance.exit_code == 0, performance.output
    windows = json.loads(performance.output)["windows"]
    assert sum(w["rows"] for w in windows) == 200 and windows[0]["metrics"]["mae"] is not None


def test_retrain_by_hand_runs_the_hook_here_and_the_failure_alert_is_sent(project: Path, webhook: Any) -> None:
    """`monitor retrain`: the hook runs in this process (remote: under the server's lease); its
    failure is recorded, alerted and posted to the webhook (remote: by the server)."""
    assert runner.invoke(app, ["init"]).exit_code == 0
    with (project / "conveyor.toml").open("a") as f:
        f.write(f'\n[monitoring]\nwebhook = "{webhook.url}"\nwebhook_backoff = 0.01\nretrain_backoff = "1h"\n'
                '\n[monitors.m]\nmodel = "churn"\nretrain = true\n')
    failed = _invoke("retrain", "m")
    assert failed.exit_code == 1 and "failed" in failed.output and "no pipeline" in failed.output, failed.output
    waiting = _invoke("retrain", "m")  # a failure backs off (never a cool-down)
    assert waiting.exit_code == 0 and "skipped" in waiting.output and "backoff" in waiting.output, waiting.output
    alerts = json.loads(_invoke("history", "--show", "alerts", "--json").output)
    assert [a["kind"] for a in alerts] == ["retrain_failed"] and "no pipeline" in alerts[0]["message"]
    assert [p["kind"] for p in webhook.posts] == ["retrain_failed"]  # delivered before the command returned
    triggers = json.loads(_invoke("history", "--show", "triggers", "--json").output)
    assert [(t["reason"], t["status"]) for t in triggers] == [("command", "skipped"), ("command", "failed")]


def test_since_ms_reaches_the_evaluation_in_both_modes(tracker: Any, server_side: Any, make_frame: Any) -> None:
    """``evaluate(since_ms=…)`` (one batch of a longer window) means the same remotely: the
    server evaluates that span, and a start after the end is the same error naming since_ms."""
    from conveyor.errors import InvalidInput
    from conveyor.monitoring import MonitorConfig, Monitoring

    ref = conveyor.data.add(make_frame(seed=1), name="train", tracker=server_side).ref
    config = MonitorConfig(name="m", model="churn", reference=ref, target="churned", window="1h")
    with pytest.raises(InvalidInput, match="since_ms") as refused:
        Monitoring(tracker).evaluate(config, since_ms=2_000_000, until_ms=1_000_000)
    assert refused.value.field == "since_ms"
    evaluation = Monitoring(tracker).evaluate(config, current=_window(make_frame, 1.0), since_ms=500_000,
                                              until_ms=1_000_000)
    assert evaluation.metrics["rows"] > 0
