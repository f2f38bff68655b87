"""No database connection outlives its owner: after a refused promotion on PostgreSQL (and
the module-level tracker that logged the model being replaced) nothing of this process
is still connected to the database."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import conveyor
from conveyor.cli import app

pytestmark = pytest.mark.postgres


def _open_connections(admin: str, url: str) -> int:
    import psycopg

    database = url.rsplit("/", 1)[1]
    with psycopg.connect(admin, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (database,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_refused_promotion_leaves_no_connection_open(
    embedded_only: None, project: Path, postgres_url: str, postgres_admin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_STORE_METADATA_URL", postgres_url)
    import numpy as np
    from sklearn.linear_model import LinearRegression

    import conveyor.models

    X = np.arange(20, dtype=float).reshape(10, 2)
    model = LinearRegression().fit(X, X.sum(axis=1))
    with conveyor.start_run(experiment="leak") as run:
        conveyor.models.log(model, "model", input_example=X[:3])  # registering loads it now
    conveyor.tracking.set_tracker(None)  # the default tracker it opened is closed, not dropped
    runner = CliRunner()
    done = runner.invoke(app, ["models", "register", f"runs:/{run.id}/model", "clf"])
    assert done.exit_code == 0, done.output
    refused = runner.invoke(app, ["models", "promote", "clf/1"])
    assert refused.exit_code == 1 and "refused" in refused.output
    assert _open_connections(postgres_admin, postgres_url) == 0
