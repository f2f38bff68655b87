"""Remote mode of the registry: a client with only a server URL registers, loads, promotes
and audits two model kinds (a logistic regression and a random forest); gated promotion and
model cards are decided by the server; the CLI works the same with nothing but [server] url."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from conveyor.errors import Conflict, ConveyorError


@pytest.fixture
def mode() -> str:
    return "remote"


def _iris() -> tuple[Any, Any]:
    from sklearn.datasets import load_iris

    data = load_iris(as_frame=True)
    return data.data.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_")), data.target


def _log(tracker: Any, model: Any, X: Any) -> str:
    import conveyor.models

    run = tracker.create_run("remote-registry")
    conveyor.models.log(model, "model", input_example=X[:5], run_id=run.id, tracker=tracker)
    tracker.end_run(run.id)
    return f"runs:/{run.id}/model"


def test_two_model_kinds_through_the_server(registry: Any, tracker: Any) -> None:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    from conveyor.gates import define_gate, evaluate, promote
    from conveyor.registry import Registry, current_user_name, model_card
    from conveyor.registry._remote import RemoteRegistry

    assert isinstance(registry, RemoteRegistry)
    with pytest.raises(ConveyorError, match="remote mode"):
        registry.store  # noqa: B018  (the client has no store)
    X, y = _iris()
    logreg = LogisticRegression(max_iter=500).fit(X, y)
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    v1 = registry.register(_log(tracker, logreg, X), "iris", description="logreg", tags={"kind": "linear"})
    v2 = registry.register(_log(tracker, forest, X), "iris", data_versions=[])
    assert (v1.version, v2.version, v1.status, v1.tags, v1.user) == (1, 2, "READY", {"kind": "linear"},
                                                                      current_user_name())
    for number, fitted in ((1, logreg), (2, forest)):
        loaded = registry.load_model(f"models:/iris/{number}")
        assert np.array_equal(np.asarray(loaded.predict(X)), fitted.predict(X))
    checked = registry.verify(v2.source)
    assert checked.digest == v2.digest

    server = Registry(tracker.server_tracker)  # a gate evaluated where the data is, on the server's side
    gate = define_gate("remote", label="target", metrics=["accuracy >= 0.9"], compare=None)
    frame = X.assign(target=y)
    evaluation = evaluate(gate, "models:/iris/2", frame, registry=server)
    with pytest.raises(Conflict, match="no gate evaluation"):
        promote("iris", 1, registry=registry)
    event = promote("iris", 2, registry=registry, reason="forest passed")
    assert (event.kind, event.to_value, event.evaluation_id, event.user) == \
        ("alias", "2", evaluation.id, current_user_name())
    assert registry.resolve("models:/iris@champion").version == 2
    assert [e.kind for e in registry.history("iris", alias="champion")] == ["promote_refused", "alias"]
    assert server.history("iris", alias="champion")[-1].reason == "forest passed"  # the server's own record
    assert [e["id"] for e in registry.evaluations("iris", 2)] == [evaluation.id]
    card = model_card("models:/iris@champion", registry=registry)
    assert card.startswith("# Model card: iris version 2") and "accuracy" in card

    registry.set_alias("iris", "champion", 1, reason="simpler", user="dana")
    back = registry.rollback("iris", reason="simpler was worse")
    assert (back.kind, back.from_value, back.to_value) == ("rollback", "1", "2")
    assert registry.aliases_at("iris", back.at) == {"champion": 2}
    assert server.history("iris", alias="champion")[-2].user == "dana"


def test_models_cli_with_only_a_server_url(project: Path) -> None:
    import conveyor
    import conveyor.models
    from conveyor.cli import app
    from conveyor.tracking import get_tracker, set_tracker
    from conveyor.tracking._remote import RemoteTracker

    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.linear_model import Ridge

    assert isinstance(get_tracker(), RemoteTracker)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = X @ [1.0, -2.0, 0.5]
    sources = []
    for model in (Ridge().fit(X, y), GradientBoostingRegressor(n_estimators=20).fit(X, y)):
        with conveyor.start_run(experiment="cli") as run:
            conveyor.models.log(model, "model", input_example=X[:3])
        sources.append(f"runs:/{run.id}/model")
    set_tracker(None)

    def cli(*args: str) -> Any:
        return CliRunner().invoke(app, list(args), catch_exceptions=False)

    for source in sources:
        assert cli("models", "register", source, "reg").exit_code == 0
    refused = cli("models", "promote", "reg/2", "--json")
    assert refused.exit_code != 0 and "no gate evaluation" in refused.output
    forced = json.loads(cli("models", "promote", "reg/2", "--force", "--reason", "hotfix", "--json").output)
    assert (forced["forced"], forced["to_value"], forced["reason"]) == (True, "2", "hotfix")
    shown = json.loads(cli("models", "show", "reg", "--json").output)
    assert shown["aliases"] == {"champion": 2} and [v["version"] for v in shown["versions"]] == [1, 2]
    assert json.loads(cli("models", "list", "--json").output)[0]["name"] == "reg"
    kinds = [e["kind"] for e in json.loads(cli("models", "history", "reg", "--json").output)]
    assert kinds[-2:] == ["promote_refused", "alias"]
    card = cli("models", "card", "reg@champion")
    assert card.exit_code == 0 and card.output.startswith("# Model card: reg version 2")
    assert cli("models", "rollback", "reg").exit_code != 0  # no previous holder
    assert cli("models", "show", "nope").exit_code == 3
    assert not list(project.rglob("*.db")) and not (project / ".conveyor" / "artifacts").exists()
