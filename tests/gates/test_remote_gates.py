"""Gates in both modes on other model kinds, and the server's evaluation endpoint: the
permission it asks, the 400s of a malformed body, the idempotent retry, and
``conveyor ci check`` against a real server with no store in the project."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from conveyor.gates import define_gate, evaluate, evaluations, promote
from fixtures.remote import ThreadServer, mode_project
from fixtures.gate_models import fit, regression_frame


def test_random_forest_gated_against_a_logistic_champion(registry: Any, candidate: Any, frames: Any) -> None:
    spec = define_gate(model="clf", metrics=["accuracy >= 0.7", "f1 >= champion.f1 - 0.05"],
                       operational={"max_size_mb": 50, "latency_samples": 5}, compare={"margin": 0.05})
    first = candidate("good")
    assert evaluate(spec, first.uri, frames[1], registry=registry).passed
    promote("clf", first.version, registry=registry)
    forest = candidate("forest")
    result = evaluate(spec, forest.uri, frames[1], registry=registry)
    assert result.champion_version == first.version and result.champion_metrics
    assert result.passed, [c.summary for c in result.failures]
    ops = next(c for c in result.checks if c.kind == "operational")
    assert ops.evidence["size_mb"] == pytest.approx(registry.get_version("clf", forest.version).size / 1e6)
    stored = evaluations(registry, "clf", forest.version)
    assert [e.id for e in stored] == [result.id]
    assert stored[0].metrics == pytest.approx(result.metrics) and stored[0].created_at == result.created_at
    assert [c.to_dict() for c in stored[0].checks] == json.loads(json.dumps([c.to_dict() for c in result.checks],
                                                                            default=str))
    assert [e.version for e in evaluations(registry, "clf")] == [forest.version, first.version]  # newest first
    event = promote("clf", forest.version, registry=registry)
    assert event.evaluation_id == result.id and registry.resolve("models:/clf@champion").version == forest.version


def test_a_regressor_failing_its_gate_cannot_be_promoted(registry: Any, candidate: Any, frames: Any) -> None:
    from conveyor.errors import Conflict

    holdout = regression_frame(frames[1])
    version = candidate("regressor", name="reg")
    loose = define_gate(model="reg", task="regression", metrics=["r2 >= -10"], slices=None)
    strict = define_gate(name="strict", model="reg", task="regression", metrics=["rmse <= 0.0001"], slices=None)
    assert evaluate(loose, version.uri, holdout, registry=registry).passed
    failed = evaluate(strict, version.uri, holdout, registry=registry)
    assert not failed.passed and failed.failures[0].summary and "rmse" in failed.metrics
    found = evaluations(registry, "reg", version.version)
    assert [e.gate for e in found] == ["strict", "default"] and [e.passed for e in found] == [False, True]
    with pytest.raises(Conflict, match="gate failed"):
        promote("reg", version.version, registry=registry)
    assert "champion" not in registry.get_model("reg").aliases


def test_an_unsaved_evaluation_stores_nothing(registry: Any, candidate: Any, frames: Any) -> None:
    version = candidate("good")
    result = evaluate(define_gate(metrics=["accuracy >= 0.5"]), version.uri, frames[1], registry=registry, save=False)
    assert result.passed and evaluations(registry, "clf") == []


# -- the endpoint behind remote mode ----------------------------------------------------------------------
@pytest.fixture
def team(store: Any, blobs: Any, frames: Any) -> Iterator[Any]:
    """A server with authentication over a registered ``clf`` v1: ana may edit it, bob only read it."""
    import conveyor.models
    from conveyor.registry import Registry
    from conveyor.server import Users, create_app
    from conveyor.settings import ServerSettings, TrackingSettings
    from conveyor.tracking import Tracker

    tracker = Tracker(store, blobs, TrackingSettings())
    run = tracker.create_run("gates-team")
    train = frames[0]
    conveyor.models.log(fit("good", train), "model", input_example=train.drop(columns=["label"]).head(3),
                        run_id=run.id, tracker=tracker)
    tracker.flush()
    Registry(tracker).register(f"runs:/{run.id}/model", "clf")
    users = Users(tracker.store)
    for name in ("ana", "bob"):
        users.add(name)
        users.grant(name, "experiment", str(run.experiment_id), "read")
    users.grant("ana", "model", "clf", "edit")
    users.grant("bob", "model", "clf", "read")
    tokens = {n: users.create_token(n, "t") for n in ("ana", "bob")}
    server = ThreadServer(create_app(tracker, auth=True, users=users,
                                     server=ServerSettings(default_role="none"))).start()
    yield server, tokens, tracker
    server.stop()
    tracker.close()


def _registry(server: Any, token: str, spool: Path) -> Any:
    from conveyor.registry import Registry
    from conveyor.settings import ServerSettings, TrackingSettings
    from conveyor.tracking._remote import RemoteTracker

    return Registry(RemoteTracker(ServerSettings(url=server.url, token=token, retry_seconds=2.0, timeout=30.0),
                                  TrackingSettings(flush_interval=0.05), spool_dir=spool))


def _post(server: Any, token: str, body: Any, path: str = "/models/clf/versions/1/evaluations",
          **headers: str) -> httpx.Response:
    return httpx.post(f"{server.url}/api/v1{path}", json=body, timeout=30,
                      headers={"authorization": f"Bearer {token}", **headers})


def test_storing_an_evaluation_needs_edit_on_the_model(team: Any, frames: Any, tmp_path: Path) -> None:
    from conveyor.server.api.models import _evaluations
    from conveyor.registry import Registry
    from conveyor.tracking._remote import AccessDenied

    server, tokens, tracker = team
    spec = define_gate(metrics=["accuracy >= 0.7"], slices=None)
    bob = _registry(server, tokens["bob"], tmp_path / "bob")
    ana = _registry(server, tokens["ana"], tmp_path / "ana")
    try:
        with pytest.raises(AccessDenied, match="may not edit model 'clf'"):
            evaluate(spec, "models:/clf/1", frames[1], registry=bob)  # loading and evaluating is reading: fine
        assert evaluations(bob, "clf", 1) == []
        done = evaluate(spec, "models:/clf/1", frames[1], registry=ana)
        assert [e.id for e in evaluations(bob, "clf", 1)] == [done.id]  # reading needs read only
        stored = _evaluations(Registry(tracker), "clf", version=1)
        assert [(e.id, e.user) for e in stored] == [(done.id, "ana")]  # recorded as the authenticated caller
    finally:
        bob.tracker.close()
        ana.tracker.close()
    denied = _post(server, tokens["bob"], {"gate": "g", "n_rows": 1, "checks": []})
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "FORBIDDEN"
    listing = httpx.get(f"{server.url}/api/v1/models/clf/evaluations", timeout=30,
                        headers={"authorization": f"Bearer {tokens['bob']}"})
    assert listing.status_code == 200 and len(listing.json()["evaluations"]) == 1


GOOD = {"gate": "g", "n_rows": 10, "metrics": {"accuracy": 0.9, "r2": "NaN"},
        "checks": [{"name": "accuracy >= 0.5", "kind": "threshold", "passed": True, "summary": "0.9 ≥ 0.5",
                    "evidence": {"value": 0.9, "bound": "Infinity"}}],
        "schema": [{"name": "x0", "dtype": "float64"}]}


@pytest.mark.parametrize("change, field", [
    ({"n_rows": None}, "n_rows"),
    ({"n_rows": -1}, "n_rows"),
    ({"gate": ""}, "gate"),
    ({"checks": [{"name": "x", "kind": "threshold", "summary": ""}]}, "checks.0.passed"),
    ({"checks": "all good"}, "checks"),
    ({"metrics": {"accuracy": "high"}}, "metrics.accuracy"),
    ({"schema": [{"name": "x0"}]}, "schema.0.dtype"),
    ({"surprise": 1}, "surprise"),
    ({"passed": False}, "passed"),  # disagrees with the checks
    ({"version": 2}, "version"),
    ({"model": "other"}, "model"),
    ({"champion_version": 1}, "champion_version"),  # itself
    ({"champion_version": 7}, "champion_version"),  # no such version
    ({"id": "../../etc"}, "id"),
    ({"id": "abc"}, "id"),  # not the Idempotency-Key sent
])
def test_a_malformed_evaluation_is_a_400_naming_the_field(team: Any, change: dict[str, Any], field: str) -> None:
    from conveyor.registry import Registry
    from conveyor.server.api.models import _evaluations

    server, tokens, tracker = team
    body = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    answer = _post(server, tokens["ana"], body, **{"Idempotency-Key": "k1"})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "INVALID" and error["field"] == field, error
    assert _evaluations(Registry(tracker), "clf", version=1) == []


def test_a_retried_post_stores_the_evaluation_once(team: Any) -> None:
    server, tokens, _ = team
    first = _post(server, tokens["ana"], GOOD, **{"Idempotency-Key": "retry-1"})
    assert first.status_code == 201, first.text
    again = _post(server, tokens["ana"], GOOD, **{"Idempotency-Key": "retry-1"})
    assert again.status_code == 200 and again.json() == first.json()
    stored = first.json()
    assert stored["id"] == "retry-1" and stored["passed"] is True and stored["user"] == "ana"
    assert stored["metrics"] == {"accuracy": 0.9, "r2": "NaN"}  # non-finite numbers as the API's strings
    listing = httpx.get(f"{server.url}/api/v1/models/clf/evaluations", params={"version": 1}, timeout=30,
                        headers={"authorization": f"Bearer {tokens['ana']}"}).json()["evaluations"]
    assert [e["id"] for e in listing] == ["retry-1"]
    per_version = httpx.get(f"{server.url}/api/v1/models/clf/versions/1/evaluations", timeout=30,
                            headers={"authorization": f"Bearer {tokens['ana']}"})
    assert per_version.status_code == 200, per_version.text  # a NaN metric is no 500
    missing = _post(server, tokens["ana"], GOOD, path="/models/clf/versions/9/evaluations")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"


# -- the CLI in remote mode -------------------------------------------------------------------------------
@pytest.fixture(params=["embedded", "remote"])
def project(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    yield from mode_project(str(request.param), tmp_path, monkeypatch)


def test_ci_check_and_promote_through_the_cli(project: Path, frames: Any) -> None:
    import conveyor.data
    import conveyor.models
    from conveyor.cli import app
    from conveyor.tracking import get_tracker

    remote = "[server]" in (project / "conveyor.toml").read_text(encoding="utf-8")
    tracker = get_tracker()
    holdout = conveyor.data.add(frames[1], name="holdout", tracker=tracker)
    train = frames[0]
    run = tracker.create_run("ci")
    conveyor.models.log(fit("forest", train), "model", input_example=train.drop(columns=["label"]).head(3),
                        run_id=run.id, tracker=tracker)
    tracker.flush()
    with (project / "conveyor.toml").open("a", encoding="utf-8") as out:
        out.write(f'\n[gates.default]\nmodel = "clf"\ndata = "{holdout.ref}"\nmetrics = ["accuracy >= 0.7"]\n'
                  f'[gates.strict]\nmodel = "clf"\ndata = "{holdout.ref}"\nmetrics = ["accuracy >= 0.9999"]\n')
    runner = CliRunner()
    strict = runner.invoke(app, ["ci", "check", "--gate", "strict", "--candidate", f"runs:/{run.id}/model"])
    assert strict.exit_code == 1, strict.output  # registered as clf/1, then vetoed
    assert "accuracy" in strict.output
    checked = runner.invoke(app, ["ci", "check", "--candidate", "models:/clf/1", "--json"])
    assert checked.exit_code == 0, checked.output
    verdict = json.loads(checked.output[checked.output.index("{"):])
    assert verdict["passed"] and verdict["model"] == "clf" and verdict["version"] == 1
    promoted = runner.invoke(app, ["ci", "promote"])
    assert promoted.exit_code == 0, promoted.output
    assert "→" in promoted.output
    from conveyor.registry import get_registry

    registry = get_registry()
    assert registry.resolve("models:/clf@champion").version == 1
    assert [e.gate for e in evaluations(registry, "clf", 1)] == ["default", "strict"]
    if remote:
        from conveyor.registry._remote import RemoteRegistry

        assert isinstance(registry, RemoteRegistry)


def test_the_body_sent_is_strict_json() -> None:
    import numpy as np

    from conveyor.gates._remote import plain

    body = plain({"m": {"a": np.float64("nan"), "b": float("inf"), "c": -np.inf, "d": np.int64(3)},
                  "xs": (np.bool_(True), np.array([1.5, 2.0])), "when": Path("x.csv"), 7: None})
    assert body == {"m": {"a": "NaN", "b": "Infinity", "c": "-Infinity", "d": 3},
                    "xs": [True, [1.5, 2.0]], "when": "x.csv", "7": None}
    assert json.loads(json.dumps(body, allow_nan=False)) == body
