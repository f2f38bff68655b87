"""`conveyor monitor export`: the prediction log joined with its feedback, to Parquet or
CSV, for a classifier (random forest, wine) and a regressor (gradient boosting, diabetes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import client, run
from conveyor.entities import ColumnSpec, Signature

runner = CliRunner()


class Sk:
    """A fitted scikit-learn estimator behind the Predictor protocol."""

    flavor = "sklearn"

    def __init__(self, model: Any, columns: list[str], out: str) -> None:
        self.model = model
        self.signature = Signature(tuple(ColumnSpec(c, "float64") for c in columns), (ColumnSpec("prediction", out),))

    def predict(self, data: Any) -> Any:
        return self.model.predict(np.asarray(data, dtype=float))


@pytest.fixture
def served_log(project: Path) -> dict[str, Any]:
    """Predictions of two models (and versions) with feedback for some rows, in the project's store."""
    from sklearn.datasets import load_diabetes, load_wine
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier

    from conveyor.serving import ServedModel, ServingConfig, create_app
    from conveyor.tracking import get_tracker

    wine, diabetes = load_wine(as_frame=True), load_diabetes(as_frame=True)
    forest = Sk(RandomForestClassifier(n_estimators=10, random_state=0).fit(wine.data.to_numpy(), wine.target),
                list(wine.data.columns), "int64")
    boost = Sk(GradientBoostingRegressor(n_estimators=20, random_state=0).fit(diabetes.data.to_numpy(),
                                                                             diabetes.target),
               list(diabetes.data.columns), "float64")
    app = create_app([ServedModel("wine", forest, "2"), ServedModel("sugar", boost, "7")], tracker=get_tracker(),
                     config=ServingConfig(log_flush_s=0.05, access_log=False))

    async def go() -> None:
        async with client(app) as c:
            for i in range(3):
                rows = wine.data.iloc[i * 4:(i + 1) * 4]
                r = await c.post("/invocations?model=wine", headers={"x-request-id": f"w{i}"},
                                 json={"dataframe_split": {"columns": list(rows.columns), "data": rows.values.tolist()}})
                assert r.status_code == 200, r.text
            r = await c.post("/invocations?model=sugar", headers={"x-request-id": "s0"},
                             json={"dataframe_records": diabetes.data.iloc[:5].to_dict("records")})
            assert r.status_code == 200, r.text
            assert (await c.post("/v2/models/wine/feedback", json={"request_id": "w1", "labels": [0, 0, 1]})
                    ).status_code == 200
            assert (await c.post("/v2/models/sugar/feedback", json={"request_id": "s0", "label": 151.0, "row": 4})
                    ).status_code == 200

    run(go())
    get_tracker().flush()
    return {"wine": wine, "diabetes": diabetes}


def _export(*args: str) -> Any:
    from conveyor.cli import app

    return runner.invoke(app, ["monitor", "export", *args])


def test_export_parquet_and_csv_join_feedback(served_log: dict[str, Any], project: Path) -> None:
    result = _export("wine", "--out", "wine.parquet", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"path": "wine.parquet", "format": "parquet", "rows": 12, "labelled": 3,
                                         "versions": ["2"]}
    frame = pd.read_parquet(project / "wine.parquet")
    assert frame.request_id.tolist() == ["w0"] * 4 + ["w1"] * 4 + ["w2"] * 4
    assert frame.label.tolist()[4:8][:3] == [0, 0, 1] and frame.label.isna().sum() == 9
    assert set(frame.version) == {"2"}
    assert frame["alcohol"].tolist() == served_log["wine"].data["alcohol"].iloc[:12].tolist()

    result = _export("sugar", "--format", "csv", "--out", "sugar.csv")
    assert result.exit_code == 0, result.output
    assert "5 rows (1 with a label)" in result.output
    csv = pd.read_csv(project / "sugar.csv")
    assert csv.row.tolist() == [0, 1, 2, 3, 4] and csv.label.tolist()[4] == 151.0 and csv.label.isna().sum() == 4
    assert csv.timestamp.str.endswith("Z").all() and (csv.version == 7).all()


def test_export_refuses_to_overwrite_and_names_bad_input(served_log: dict[str, Any], project: Path) -> None:
    (project / "keep.csv").write_text("mine\n")
    result = _export("wine", "--format", "csv", "--out", "keep.csv")
    assert result.exit_code == 2 and "--force" in result.output
    assert (project / "keep.csv").read_text() == "mine\n"
    assert _export("wine", "--format", "csv", "--out", "keep.csv", "--force").exit_code == 0
    assert pd.read_csv(project / "keep.csv").shape[0] == 12
    result = _export("wine", "--format", "xlsx", "--out", "w.xlsx")
    assert result.exit_code == 2 and "xlsx" in result.output
    result = _export("nope", "--out", "n.parquet")
    assert result.exit_code == 3 and "nope" in result.output
    assert _export("wine", "--out", "/dev/null", "--force").exit_code == 2
    (project / ".git").mkdir()
    assert _export("wine", "--out", ".git/config").exit_code == 2
    assert not list(project.glob(".*.tmp")) and not (project / "n.parquet").exists()
