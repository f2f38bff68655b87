"""Prediction-log rows survive a metadata store that is down at shutdown: the final write
is retried, then the rows are spooled to local disk and stored exactly once by the next
server start or by `conveyor sync` (a real PostgreSQL behind a TCP proxy that the test stops)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from conveyor.serving._predlog import SPOOL_SUBDIR, LogWriter, Record, replay_spool, write_spool
from conveyor.settings import StoreSettings
from conveyor.store import Store
from conveyor.store._serving import serving_log_files
from fixtures.proxy import TcpProxy, pg_proxy  # noqa: F401  (fixture)

pytestmark = [pytest.mark.postgres]


def _record(i: int, model: str = "m") -> Record:
    return Record("predictions", model, "1", f"r{i}", 1_700_000_000_000 + i, 2,
                  {"x": np.array([float(i), i + 0.5]), "city": np.array(["a", "b"], dtype=object)},
                  {"y": np.array([2.0 * i, 2.0 * i + 1])}, 1.0)


def _stored_rows(url: str) -> tuple[int, int]:
    """(index rows, prediction rows) of the serving log, read directly, around the proxy."""
    store = Store.open(url)
    with store.read() as conn:
        files, rows = conn.execute(select(func.count(), func.coalesce(func.sum(serving_log_files.c.rows), 0))).one()
    store.close()
    return int(files), int(rows)


def test_rows_buffered_at_shutdown_during_an_outage_are_spooled_then_stored_once(
    pg_proxy: tuple[TcpProxy, str], postgres_url: str, blobs: Any, tmp_path: Path
) -> None:
    proxy, url = pg_proxy
    store = Store.open(url, create=True, settings=StoreSettings(retry_seconds=0.5, connect_timeout=2))
    writer = LogWriter(store, blobs, flush_s=3600, spool_dir=tmp_path / "spool", close_retry_s=1.0)
    for i in range(5):
        writer.add(_record(i))
    writer.add(_record(9, model="other"))
    proxy.stop()
    writer.close()  # retried for a second, then spooled: no exception, nothing lost
    store.close()
    spooled = sorted(p.suffix for p in (tmp_path / "spool" / SPOOL_SUBDIR).iterdir() if not p.name.startswith("."))
    assert spooled == [".json", ".json", ".parquet", ".parquet"]  # one object per model
    assert writer.spooled == 12
    proxy.start()
    assert _stored_rows(postgres_url) == (0, 0)

    # The next server start over the same stores replays the spool.
    again = Store.open(url, settings=StoreSettings(retry_seconds=0.5))
    second = LogWriter(again, blobs, spool_dir=tmp_path / "spool")
    second.start()
    second.close()
    assert _stored_rows(postgres_url) == (2, 12)
    assert not [p for p in (tmp_path / "spool" / SPOOL_SUBDIR).iterdir() if not p.name.startswith(".")]
    from conveyor.serving import read_prediction_log
    from conveyor.settings import TrackingSettings
    from conveyor.tracking import Tracker

    tracker = Tracker(again, blobs, TrackingSettings(capture_git=False, capture_packages=False))
    log = read_prediction_log("m", tracker=tracker)
    assert sorted(log.request_id.unique()) == [f"r{i}" for i in range(5)] and log.y.tolist() == [
        float(v) for i in range(5) for v in (2 * i, 2 * i + 1)]
    tracker.close()


def test_a_replay_that_died_after_indexing_does_not_index_twice(postgres_url: str, blobs: Any, tmp_path: Path) -> None:
    store = Store.open(postgres_url, create=True)
    folder = tmp_path / "spool" / SPOOL_SUBDIR
    writer = LogWriter(store, blobs)
    objects = writer._objects([_record(1), _record(2)])
    write_spool(folder, objects)
    assert replay_spool(store, blobs, folder) == 4
    write_spool(folder, objects)  # the same objects again, as if the first replay died before removing them
    assert replay_spool(store, blobs, folder) == 0
    assert _stored_rows(postgres_url) == (1, 4)
    store.close()


def test_without_a_spool_folder_a_failed_final_write_still_raises(pg_proxy: tuple[TcpProxy, str], blobs: Any) -> None:
    proxy, url = pg_proxy
    store = Store.open(url, create=True, settings=StoreSettings(retry_seconds=0.2, connect_timeout=2))
    writer = LogWriter(store, blobs, close_retry_s=0.3)
    writer.add(_record(1))
    proxy.stop()
    with pytest.raises(Exception):
        writer.close()
    proxy.start()
    store.close()
