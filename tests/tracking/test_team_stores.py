"""A team setup (PostgreSQL + S3-compatible storage) chosen by settings alone, no code change."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.settings import Settings
from conveyor.store import doctor
from conveyor.tracking import Tracker


@pytest.mark.postgres
@pytest.mark.s3
def test_tracking_against_postgres_and_s3(
    postgres_url: str, s3_bucket_url: str, s3_server: str, tmp_path: Path
) -> None:
    env = {
        "CONVEYOR_STORE_METADATA_URL": postgres_url,
        "CONVEYOR_STORE_ARTIFACTS_URL": f"{s3_bucket_url}/team",
        "CONVEYOR_STORE_S3_ENDPOINT_URL": s3_server,
    }
    tracker = Tracker.from_settings(Settings.load(tmp_path, env=env))
    run = tracker.create_run("team")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "w.bin").write_bytes(b"w" * 10_000)
    tracker.log_artifacts(run.id, tmp_path / "model")
    tracker.log_text(run.id, "hello", "notes.txt")
    tracker.log_metric(run.id, "acc", 0.9)
    tracker.end_run(run.id)
    assert tracker.read_artifact(run.id, "notes.txt") == b"hello"
    restored = tracker.download_artifact(run.id, "model", tmp_path / "restored")
    assert (restored / "w.bin").read_bytes() == b"w" * 10_000
    report = doctor(tracker.store, tracker.blobs)
    assert report.healthy and report.checked >= 3 and report.orphans == []
    assert tracker.search_runs("team", filter="metrics.acc >= 0.9", output="runs")[0].id == run.id
    tracker.close()
