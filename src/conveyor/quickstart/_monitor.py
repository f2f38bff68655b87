"""Quickstart stage, the loop closes: train → gate → promote → serve → production traffic
shifts → drift detected → retraining on the newest data → gated → promoted → serving follows.

Self-contained (it needs nothing from earlier stages, only ``story.tracker``): a synthetic
churn model ``churn-loop`` is trained on data set ``churn-train@1``, passes gate
``churn-loop``, becomes champion and is served in-process (``create_app(..., follow=True)``
through Starlette's test client). Four batches of traffic are replayed with feedback
labels; from the third on, customers pay more, call support more and buy bigger plans,
and the relation between those and churn changes. A monitor evaluates each batch; its
alert triggers the retraining hook, which versions the labelled production rows as
``churn-train@2``, trains through the pipeline ``churn-loop-training`` (its declared
candidate, as ``conveyor monitor`` retraining does), gates against the champion and
promotes; the server follows
the alias and the last batch is answered by the new version. The gate also checks that
every feature helps (permutation importance) and slices by the protected column ``senior``
(not a feature); the monitor's rules also watch training/serving skew (logged rows
re-predicted with the served package), non-finite predictions, model age and latency.
A rollback drill ends the stage: the champion goes back to v1 and forward again through
the gate, both recorded in the registry history. Leaves
``story.facts["monitoring"]`` with the evaluations, the trigger and the versions served.
"""

from __future__ import annotations

import time
from typing import Any

from rich.table import Table

from conveyor.pipelines import dataset, pipeline, step, train_candidate
from conveyor.quickstart._run import Story

MODEL = "churn-loop"
EXPERIMENT = "quickstart-monitoring"
BATCH = 400
FEATURES = ["tenure", "charges", "calls", "plan"]


def traffic(n: int, shifted: bool, seed: int) -> Any:
    """Customers with a churn label; ``shifted`` moves the inputs and changes the concept."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    tenure = np.clip(rng.exponential(24, n), 1, 72).round()
    charges = rng.normal(85 if shifted else 60, 15, n).round(2)
    calls = rng.poisson(3 if shifted else 1, n).astype(float)
    plan = rng.choice(["basic", "pro", "team"], n, p=[0.2, 0.3, 0.5] if shifted else [0.5, 0.3, 0.2])
    if shifted:  # support calls now drive churn, high charges on team plans no longer do
        logit = -0.5 + 0.9 * (calls - 3) - 0.04 * (tenure - 24) - 1.2 * (plan == "team") + 0.04 * (charges - 85)
    else:
        logit = -0.5 + 0.08 * (charges - 60) - 0.05 * (tenure - 24) + 0.6 * (calls - 1) + 0.9 * (plan == "basic")
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    senior = np.where(rng.random(n) < 0.25, "yes", "no")  # a protected group: not a feature, a gate slice
    return pd.DataFrame({"tenure": tenure, "charges": charges, "calls": calls, "plan": plan, "senior": senior,
                         "churned": churned})


def _fit(frame: Any) -> Any:
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    prep = make_column_transformer((StandardScaler(), ["tenure", "charges", "calls"]),
                                   (OneHotEncoder(handle_unknown="ignore"), ["plan"]))
    return make_pipeline(prep, LogisticRegression(max_iter=500)).fit(frame[FEATURES], frame["churned"])


def _gate(holdout: str) -> Any:
    from conveyor.gates import define_gate

    return define_gate("churn-loop", model=MODEL, label="churned", data=holdout, metrics=["accuracy >= 0.65"],
                       compare={"metric": "accuracy", "margin": 0.02}, data_checks=False,
                       # every feature must be shown to help (Data 2), and what each costs is measured (Data 3)
                       features={"min_importance": 0.0, "cost": True},
                       slices={"protected": ["senior"], "thresholds": ["accuracy >= 0.6"]})


@step
def fit_churn(frame: Any) -> Any:
    """The candidate: fitted on the pinned training data, logged to this step's run."""
    import conveyor
    import conveyor.models

    model = _fit(frame)
    conveyor.log_param("rows", len(frame))
    conveyor.models.log(model, "model", input_example=frame[FEATURES].head(3))
    return model


@step(metrics=True)
def evaluate_churn(model: Any, holdout: Any) -> dict[str, float]:
    return {"accuracy": float((model.predict(holdout[FEATURES]) == holdout["churned"]).mean())}


@pipeline(name="churn-loop-training", candidate="fit_churn", evaluation="evaluate_churn")
def churn_training(train: str = "churn-train", holdout: str = "churn-holdout") -> None:
    evaluate_churn(fit_churn(dataset(train)), dataset(holdout))


def train_and_gate(story: Story, frame: Any, holdout: Any, reason: str) -> tuple[str, int, bool, str]:
    """Version ``frame`` and ``holdout``, train through the pipeline's declared candidate (the
    contract `ci check --pipeline` and `conveyor monitor` retraining use), register it, gate
    it on ``holdout``, promote if it passes."""
    import conveyor.data
    from conveyor.gates import evaluate, promote
    from conveyor.registry import Registry

    t = story.tracker
    train_ref = conveyor.data.add(frame, name="churn-train", tracker=t).ref
    holdout_ref = conveyor.data.add(holdout, name="churn-holdout", tracker=t).ref
    result = train_candidate(churn_training, params={"train": train_ref.removeprefix("data:/"),
                                                     "holdout": holdout_ref.removeprefix("data:/")},
                             tracker=t, experiment=EXPERIMENT, tags={"stage": "monitor", "reason": reason})
    registry = Registry(t)
    version = registry.register(str(result.candidate), MODEL, description=reason).version
    verdict = evaluate(_gate(holdout_ref), f"models:/{MODEL}/{version}", registry=registry)
    if not verdict.passed:
        return result.run_id, version, False, "gate failed: " + "; ".join(c.summary for c in verdict.failures)
    promote(MODEL, version, registry=registry, reason=reason)
    return result.run_id, version, True, f"gate passed on {holdout_ref}; {MODEL}@champion → v{version}"


def stage(story: Story) -> None:
    import warnings

    with warnings.catch_warnings():  # Starlette nudges towards httpx2; httpx is what conveyor ships
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from conveyor.monitoring import MonitorConfig, MonitorHooks, Monitoring, MonitoringDefaults, RetrainOutcome
    from conveyor.serving import ServingConfig, create_app, read_prediction_log

    out = story.console.print
    t = story.tracker
    run_id, v1, ok, decision = train_and_gate(story, traffic(3000, False, 1), traffic(1000, False, 2), "initial")
    out(f"trained {MODEL} v{v1} on data:/churn-train@1 (run {run_id[:8]}): {decision}")
    state: dict[str, Any] = {"since": 0}

    def window(model: str, version: str | None, since: int, until: int) -> Any:
        # the reader `conveyor monitor run` and `monitor report` use: each batch is evaluated by
        # giving evaluate() the batch's start, so the stored window is the one read and the
        # report's prediction drift, recomputed from the log, is the monitor's own
        return read_prediction_log(model, version, since, until, with_feedback=True, tracker=t)

    def retrain(model: str, trigger_id: int) -> RetrainOutcome:
        log = read_prediction_log(model, since=state["shift_started"], with_feedback=True, tracker=t)
        newest = log[log["label"].notna()][FEATURES].assign(churned=log["label"].dropna().astype(int))
        out(f"  retraining (trigger {trigger_id}) on the {len(newest)} newest labelled production rows")
        run, version, promoted, why = train_and_gate(story, newest, traffic(1000, True, 99), f"trigger {trigger_id}")
        return RetrainOutcome(run, version, promoted, why)

    config = MonitorConfig(name="churn-loop", model=MODEL, target="churned", window="1h", retrain=True,
                           columns=FEATURES, cooldown="1h",
                           rules=["drift_share > 0.3", "accuracy < 0.7", "skew_mismatch_rate > 0",
                                  "nonfinite_prediction_rate > 0", "model_age_days > 30", "p95_latency_ms > 1000",
                                  "new_data_versions > 0"])
    monitoring = Monitoring(t, MonitoringDefaults(), MonitorHooks(load_window=window, retrain=retrain))
    app = create_app([f"models:/{MODEL}@champion"], tracker=t, follow=True,
                     config=ServingConfig(access_log=False, log_flush_s=0.1, follow_interval_s=0.2))
    out(f"monitor rules: {'; '.join(config.rules)} — every evaluation also re-predicts logged rows with the "
        "served package (training/serving skew)", markup=False)
    table = Table(title=f"production traffic to {MODEL}@champion, {BATCH} requests per batch")
    for column in ("batch", "traffic", "served by", "accuracy", "drift share", "skew", "monitor", "retraining"):
        table.add_column(column)
    evaluations, served = [], []
    with TestClient(app) as client:
        for batch, shifted in enumerate((False, False, True, True, True), 1):
            if shifted and "shift_started" not in state:
                state["shift_started"] = _now_ms()
            state["since"] = _now_ms()
            frame = traffic(BATCH, shifted, 10 + batch)
            _replay(client, frame, batch)
            time.sleep(0.4)  # the log writer flushes every 0.1 s
            evaluation = monitoring.evaluate(config, since_ms=state["since"])
            log = read_prediction_log(MODEL, since=state["since"], tracker=t)
            versions = sorted(set(log["version"].astype(str)))
            evaluations.append(evaluation)
            served.append(versions)
            trig = evaluation.triggers[0] if evaluation.triggers else None
            table.add_row(str(batch), "shifted" if shifted else "as trained", ", ".join(f"v{v}" for v in versions),
                          _f(evaluation.metrics.get("accuracy")), _f(evaluation.metrics.get("drift_share")),
                          _f(evaluation.metrics.get("skew_mismatch_rate")),
                          {"alert": "[red]ALERT[/]", "ok": "[green]ok[/]"}.get(evaluation.status, evaluation.status),
                          f"{trig.status}: {trig.decision}" if trig else "")
            if trig and trig.status == "promoted":
                _wait_for_follow(client, trig.candidate_version)
    monitoring.wait(5)
    story.console.print(table)
    trigger = next((e.triggers[0] for e in evaluations if e.triggers and e.triggers[0].status == "promoted"), None)
    if trigger is not None:
        out(f"trace: evaluation {next(e.id for e in evaluations if trigger in e.triggers)} → alert "
            f"{trigger.alert_id} → retraining trigger {trigger.id} → run {str(trigger.run_id)[:8]} → "
            f"{MODEL} v{trigger.candidate_version} promoted; the last batch was served by "
            f"{', '.join('v' + v for v in served[-1])}")
    if trigger is not None and trigger.candidate_version:
        _rollback_drill(story, int(trigger.candidate_version))
    out("see it: `conveyor monitor report churn-loop --html report.html` · `conveyor monitor history --show triggers`")
    story.facts["monitoring"] = {"evaluations": [e.id for e in evaluations], "served": served,
                                 "trigger": trigger.__dict__ if trigger else None}


def _rollback_drill(story: Story, version: int) -> None:
    """Infra 7: roll the champion back to the previous version and forward again through the
    gate, both recorded in the registry history (`conveyor models history churn-loop`)."""
    from conveyor.gates import promote
    from conveyor.registry import Registry

    registry = Registry(story.tracker)
    back = registry.rollback(MODEL, reason="rollback drill")
    forward = promote(MODEL, version, registry=registry, reason="rollback drill: forward again through the gate")
    story.console.print(f"rollback drill: {MODEL}@champion v{back.from_value} → v{back.to_value} (rollback), then "
                        f"→ v{forward.to_value} again (gated promotion)", highlight=False)


def _replay(client: Any, frame: Any, batch: int) -> None:
    """Send ``frame`` in requests of 20 rows, then its labels as feedback."""
    for start in range(0, len(frame), 20):
        part = frame.iloc[start:start + 20]
        rid = f"qs-{batch}-{start}"
        answer = client.post("/invocations", headers={"x-request-id": rid}, json={"dataframe_split": {
            "columns": FEATURES, "data": part[FEATURES].to_numpy().tolist()}})
        answer.raise_for_status()
        client.post(f"/v2/models/{MODEL}/feedback",
                    json={"request_id": rid, "labels": part["churned"].tolist()}).raise_for_status()


def _wait_for_follow(client: Any, version: int | None, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        meta = client.get(f"/v2/models/{MODEL}").json()
        if str(meta.get("versions", [meta.get("version")])[-1]) == str(version) or str(version) in map(
                str, meta.get("versions", [])):
            return
        time.sleep(0.2)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _f(value: Any) -> str:
    return "—" if value is None else f"{value:.3f}"
