"""Schemathesis over ``/api/v1/openapi.json`` (experiments, runs, artifacts…): generated
requests (examples and fuzzing, a few of each per operation) never get a 5xx from a real
server over real stores."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fixtures.remote import serve


@pytest.mark.slow
def test_generated_requests_get_no_server_error(tmp_path: Path) -> None:
    from conveyor.blobs import BlobStore
    from conveyor.settings import TrackingSettings
    from conveyor.store import Store
    from conveyor.tracking import Tracker

    store = Store.open(f"sqlite:///{tmp_path / 'meta.db'}", create=True)
    blobs = BlobStore.open(tmp_path / "artifacts")
    blobs.init()
    tracker: Any = Tracker(store, blobs, TrackingSettings(flush_interval=0.05))
    run = tracker.create_run("fuzz", capture=False)
    tracker.log_metric(run.id, "loss", 0.5)
    tracker.log_text(run.id, "hello", "notes.txt")
    tracker.flush()
    # the run's real id for every {run_id}, so requests reach the handlers instead of a 404
    (tmp_path / "schemathesis.toml").write_text(f'[parameters]\n"path.run_id" = "{run.id}"\n', encoding="utf-8")
    try:
        with serve(tracker) as server:
            result = subprocess.run(
                [sys.executable, "-m", "schemathesis.cli", "run", f"{server.url}/api/v1/openapi.json",
                 "--url", f"{server.url}/api/v1", "--checks", "not_a_server_error",
                 "--phases", "examples,fuzzing", "--max-examples", "8", "--seed", "1",
                 "--request-timeout", "20", "--report-dir", str(tmp_path), "--no-color"],
                capture_output=True, text=True, timeout=600, cwd=tmp_path)
    finally:
        tracker.close()
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    summary = result.stdout[result.stdout.find("SUMMARY"):]
    assert "Tested:" in summary, summary
    assert " failed" not in summary and "passed" in summary, result.stdout[-3000:]
    print(summary)
