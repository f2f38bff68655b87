"""Every write path rides out a PostgreSQL blink and takes effect exactly once.

A TCP proxy in front of the real server is cut at a chosen moment, picked by the SQL the
write is about to send (an SQLAlchemy ``before_cursor_execute`` hook on the statement that
writes the table): during a registry alias move, a model registration, a data add's
metadata commit and an artifact upload's record. Two faults:

- ``reset``: the connection is reset before the statement runs and the proxy refuses
  connections for a second (the transaction rolls back; the write is retried);
- ``lost_ack``: the COMMIT reaches the server, which commits, but its answer is swallowed
  and the connection reset: the client cannot know, retries, and must not write twice.

Afterwards the rows are counted directly (around the proxy).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from conveyor.blobs import Digest
from conveyor.store import artifacts, dataset_versions, model_versions, registry_events
from conveyor.tracking import Tracker
from fixtures.proxy import TcpProxy, arm_fault, count_rows, pg_proxy, proxied  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
FAULTS = ["reset", "lost_ack"]


def _package_run(tracker: Tracker, slope: float) -> str:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    import conveyor.models

    x = pd.DataFrame({"x": np.arange(6, dtype=float)})
    run = tracker.create_run("blinks")
    conveyor.models.log(LinearRegression().fit(x, slope * x["x"]), "model", input_example=x[:3],
                        run_id=run.id, tracker=tracker)
    return f"runs:/{run.id}/model"


@pytest.mark.parametrize("fault", FAULTS)
def test_an_alias_move_happens_once(proxied: tuple[TcpProxy, Tracker], postgres_url: str, fault: str) -> None:
    from conveyor.registry import Registry

    proxy, tracker = proxied
    registry = Registry(tracker)
    for slope in (1.0, 2.0):
        registry.register(_package_run(tracker, slope), "blinky")
    registry.set_alias("blinky", "champion", 1, reason="first")
    fired = arm_fault(tracker, proxy, "INTO model_aliases", fault)
    # a compare-and-set: a retry that re-ran the move would find its own write and call it "lost"
    moved = registry.set_alias("blinky", "champion", 2, reason="better", expected=1)
    assert fired and moved.to_value == "2"
    assert proxy.commits_cut == (1 if fault == "lost_ack" else 0)
    assert registry.get("models:/blinky@champion").version == 2
    kinds = [(e.kind, e.to_value) for e in registry.history("blinky", alias="champion")]
    assert kinds == [("alias", "1"), ("alias", "2")]  # once, and no promote_lost
    assert count_rows(postgres_url, select(func.count()).select_from(registry_events)
                  .where(registry_events.c.alias == "champion")) == 2


@pytest.mark.parametrize("fault", FAULTS)
def test_a_registration_takes_one_number(proxied: tuple[TcpProxy, Tracker], postgres_url: str, fault: str) -> None:
    from conveyor.registry import Registry

    proxy, tracker = proxied
    registry = Registry(tracker)
    registry.register(_package_run(tracker, 1.0), "numbers")
    source = _package_run(tracker, 3.0)
    fired = arm_fault(tracker, proxy, "INTO model_versions", fault)
    version = registry.register(source, "numbers")
    assert fired and version.version == 2 and version.status == "READY"
    assert count_rows(postgres_url, select(func.count()).select_from(model_versions)) == 2
    registered = [e for e in registry.history("numbers") if e.kind == "register"]
    assert [e.version for e in registered] == [1, 2]


@pytest.mark.parametrize("fault", FAULTS)
def test_a_data_add_commits_one_version(
    proxied: tuple[TcpProxy, Tracker], postgres_url: str, fault: str, tmp_path: Path
) -> None:
    import pandas as pd

    import conveyor.data

    proxy, tracker = proxied
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(20):
        (folder / f"{i:03}.bin").write_bytes(bytes([i]) * (100 + i))
    fired = arm_fault(tracker, proxy, "INTO dataset_versions", fault)
    added = conveyor.data.add(folder, name="images", tracker=tracker)
    assert fired and added.version == 1 and added.created
    table = conveyor.data.add(pd.DataFrame({"a": [1, 2, 3]}), name="table", tracker=tracker)  # after the blink
    assert table.version == 1
    assert count_rows(postgres_url, select(func.count()).select_from(dataset_versions)) == 2
    assert [v.version for v in conveyor.data.versions("images", tracker=tracker)] == [1]


@pytest.mark.parametrize("fault", FAULTS)
def test_an_artifact_upload_is_recorded_once(
    proxied: tuple[TcpProxy, Tracker], postgres_url: str, fault: str, tmp_path: Path
) -> None:
    proxy, tracker = proxied
    run = tracker.create_run("uploads")
    source = tmp_path / "weights.bin"
    source.write_bytes(b"\x01" * 50_000)
    fired = arm_fault(tracker, proxy, "INTO artifacts", fault)
    tracker.log_artifact(run.id, source, "model")
    tracker.log_params(run.id, {"after": 1})
    tracker.end_run(run.id)
    assert fired
    assert [a.path for a in tracker.list_artifacts(run.id, "model")] == ["model/weights.bin"]
    assert count_rows(postgres_url, select(func.count()).select_from(artifacts).where(artifacts.c.run_id == run.id)) == 1
    blob = tracker.list_artifacts(run.id, "model")[0]
    assert tracker.blobs.read_bytes(Digest.parse(blob.digest)) == source.read_bytes()
