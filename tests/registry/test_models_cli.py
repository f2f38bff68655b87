from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from conveyor.cli import app


def _run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def _logged_run(project: Path) -> str:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    import conveyor
    import conveyor.models

    x = pd.DataFrame({"x": np.arange(5, dtype=float)})
    with conveyor.start_run(experiment="cli") as run:
        conveyor.models.log(LinearRegression().fit(x, 3 * x["x"]), "model", input_example=x[:2])
    return f"runs:/{run.id}/model"


def test_models_commands(project: Path) -> None:
    from conveyor.tracking import set_tracker

    sources = [_logged_run(project), _logged_run(project)]
    set_tracker(None)
    for source in sources:
        assert _run("models", "register", source, "churn").exit_code == 0
    assert [v["version"] for v in json.loads(_run("models", "versions", "churn", "--json").output)] == [1, 2]
    assert _run("models", "alias", "churn", "challenger", "2", "--reason", "A/B").exit_code == 0
    assert _run("models", "tag", "churn/2", "reviewed=yes").exit_code == 0
    assert _run("models", "describe", "churn/2", "second try").exit_code == 0
    shown = json.loads(_run("models", "show", "churn@challenger", "--json").output)
    assert (shown["version"], shown["tags"], shown["description"]) == (2, {"reviewed": "yes"}, "second try")
    assert json.loads(_run("models", "show", "churn", "--json").output)["aliases"] == {"challenger": 2}
    assert _run("models", "archive", "churn/2").exit_code == 1  # holds an alias
    assert _run("models", "alias", "churn", "challenger", "--delete").exit_code == 0
    assert _run("models", "archive", "churn/2", "--reason", "old").exit_code == 0
    assert _run("models", "archive", "churn/2", "--restore").exit_code == 0
    assert _run("models", "delete", "churn/1", "--reason", "cleanup").exit_code == 0
    kinds = [e["kind"] for e in json.loads(_run("models", "history", "churn", "--json").output)]
    assert kinds == ["register", "register", "alias", "alias_deleted", "status", "status", "deleted"]
    assert _run("models", "show", "nope").exit_code == 3
    assert _run("models", "history", "churn", "--at", "yesterday").exit_code == 2
    assert "churn" in _run("models", "list").output


def test_show_and_card_read_the_probability_output_from_the_package(project: Path) -> None:
    """`models show` and the model card say what a version answers, read from its package:
    a classifier's probabilities with their class labels, a regressor's none."""
    import pandas as pd
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    import conveyor
    import conveyor.models
    from conveyor.registry import model_card
    from conveyor.tracking import set_tracker

    iris = load_iris(as_frame=True)
    labels = pd.Series(iris.target_names[iris.target])
    with conveyor.start_run(experiment="cli") as run:
        conveyor.models.log(LogisticRegression(max_iter=500).fit(iris.data, labels), "model",
                            input_example=iris.data[:3])
    regressor = _logged_run(project)
    set_tracker(None)
    assert _run("models", "register", f"runs:/{run.id}/model", "iris").exit_code == 0
    assert _run("models", "register", regressor, "lin").exit_code == 0
    shown = json.loads(_run("models", "show", "iris/1", "--json").output)
    assert shown["signature"]["probabilities"] == {
        "name": "probabilities", "dtype": "float64", "shape": [3], "nullable": False,
        "classes": ["setosa", "versicolor", "virginica"]}
    text = CliRunner().invoke(app, ["models", "show", "iris/1"], env={"COLUMNS": "300"}).output
    assert "probabilities (float64 × 3: classes setosa, versicolor, virginica)" in text
    assert "probabilities" not in json.loads(_run("models", "show", "lin/1", "--json").output)["signature"]
    assert "none (the model has no predict_proba)" in CliRunner().invoke(
        app, ["models", "show", "lin/1"], env={"COLUMNS": "300"}).output
    set_tracker(None)
    card = model_card("models:/iris/1")
    assert "| probabilities | probabilities (float64 × 3: classes setosa, versicolor, virginica) |" in card
