"""The explicit Tracker API over real stores (SQLite and PostgreSQL)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from conveyor.entities import RunStatus
from conveyor.errors import Conflict, InvalidMetric, NotFound, UnsafePath
from conveyor.tracking import Tracker


def test_run_life_cycle_and_context(tracker: Tracker) -> None:
    run = tracker.create_run("exp", name="first", tags={"team": "ml"})
    assert run.status is RunStatus.RUNNING and run.tags == {"team": "ml"}
    assert run.user and run.host and run.python_version
    assert run.packages_digest and run.packages_digest.startswith("blake3:")
    packages = getattr(tracker, "server_tracker", tracker).blobs.read_bytes(__import__("conveyor.blobs").blobs.Digest.parse(run.packages_digest))
    assert b"sqlalchemy==" in packages
    tracker.end_run(run.id)
    done = tracker.get_run(run.id)
    assert done.status is RunStatus.FINISHED and done.end_time is not None
    with pytest.raises(Conflict):
        tracker.end_run(run.id)


def test_git_is_captured_inside_a_repository(tracker: Tracker, tmp_path: Path) -> None:
    import subprocess

    repo = tmp_path / "repo"
    repo.mkdir()
    for args in (["init", "-q", "-b", "main"], ["config", "user.email", "a@b"], ["config", "user.name", "a"]):
        subprocess.run(["git", *args], cwd=repo, check=True)
    (repo / "train.py").write_text("print(1)\n")
    subprocess.run(["git", "add", "."], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-qm", "init"], cwd=repo, check=True)
    run = tracker.create_run("exp", cwd=repo)
    assert run.git_commit and len(run.git_commit) == 40
    assert run.git_branch == "main" and run.git_dirty is False


def test_metrics_are_buffered_then_all_written(tracker: Tracker) -> None:
    run = tracker.create_run("exp")
    for step in range(2500):
        tracker.log_metric(run.id, "loss", 1 / (step + 1), step=step)
    tracker.log_metrics(run.id, {"acc": 0.5, "f1": 0.25}, step=3)
    tracker.end_run(run.id)
    history = tracker.metric_history(run.id, "loss")
    assert len(history) == 2500 and history[-1].step == 2499
    assert tracker.get_run(run.id).metrics == {"loss": pytest.approx(1 / 2500), "acc": 0.5, "f1": 0.25}


@pytest.mark.parametrize("value", ["0.5", None, [1.0], complex(1, 1), True])
def test_a_metric_that_is_not_a_real_number_names_the_key(tracker: Tracker, value: object) -> None:
    run = tracker.create_run("exp")
    with pytest.raises(InvalidMetric, match="'loss'"):
        tracker.log_metric(run.id, "loss", value)


def test_nan_is_a_legal_metric_value(tracker: Tracker) -> None:
    run = tracker.create_run("exp")
    tracker.log_metric(run.id, "loss", math.nan)
    tracker.flush()
    assert math.isnan(tracker.get_run(run.id).metrics["loss"])


def _another(tracker: Tracker) -> Tracker:
    """A second tracker on the same stores (or the same server), with nothing cached."""
    from conveyor.tracking._remote import RemoteTracker

    if isinstance(tracker, RemoteTracker):
        return RemoteTracker(tracker.server, tracker.settings)
    return Tracker(tracker.store, tracker.blobs)


def test_logging_to_unknown_or_deleted_runs(tracker: Tracker) -> None:
    with pytest.raises(NotFound, match="run 'deadbeef'"):
        tracker.log_metric("deadbeef", "m", 1.0)
    run = tracker.create_run("exp")
    tracker.delete_runs([run.id])
    other = _another(tracker)
    with pytest.raises(Conflict, match="deleted"):
        other.log_metric(run.id, "m", 1.0)
    other.close()


def test_artifacts_files_folders_and_text(tracker: Tracker, tmp_path: Path) -> None:
    run = tracker.create_run("exp")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.bin").write_bytes(b"\x00" * 1000)
    (tmp_path / "model" / "sub").mkdir()
    (tmp_path / "model" / "sub" / "config.json").write_text("{}")
    (tmp_path / "report.txt").write_text("hello")
    tracker.log_artifact(run.id, tmp_path / "report.txt", "reports")
    folder = tracker.log_artifacts(run.id, tmp_path / "model")
    tracker.log_dict(run.id, {"b": 1, "a": [1, 2]}, "config/params.json")
    tracker.log_text(run.id, "notes", "notes.md")
    listed = {a.path: a for a in tracker.list_artifacts(run.id)}
    assert set(listed) == {"reports/report.txt", "model", "config/params.json", "notes.md"}
    assert folder.is_dir and folder.size == 1002
    assert tracker.read_artifact(run.id, "config/params.json") == b'{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1\n}'
    out = tracker.download_artifact(run.id, "model", tmp_path / "restored")
    assert (out / "sub" / "config.json").read_text() == "{}"
    assert (out / "weights.bin").stat().st_size == 1000
    with pytest.raises(NotFound):
        tracker.get_artifact(run.id, "nope.txt")


@pytest.mark.parametrize("path", ["../escape.txt", "/etc/passwd", "a/../../b", "a\\..\\b", "a//b", "x\x00y"])
def test_artifact_paths_cannot_escape(tracker: Tracker, path: str) -> None:
    run = tracker.create_run("exp")
    with pytest.raises(UnsafePath):
        tracker.log_text(run.id, "x", path)


def test_same_content_is_stored_once(tracker: Tracker, tmp_path: Path) -> None:
    first, second = tracker.create_run("exp"), tracker.create_run("exp")
    tracker.log_text(first.id, "same bytes", "a.txt")
    tracker.log_text(second.id, "same bytes", "b.txt")
    assert tracker.get_artifact(first.id, "a.txt").digest == tracker.get_artifact(second.id, "b.txt").digest


def test_nested_runs_and_search_frame(tracker: Tracker) -> None:
    parent = tracker.create_run("exp", name="parent")
    child = tracker.create_run("exp", name="child", parent_id=parent.id)
    tracker.log_params(child.id, {"C": 0.1})
    tracker.log_metric(child.id, "acc", 0.9)
    tracker.end_run(child.id)
    frame = tracker.search_runs("exp", filter="metrics.acc > 0.5")
    assert list(frame["run_id"]) == [child.id]
    assert frame.loc[0, "parent_id"] == parent.id
    assert frame.loc[0, "params.C"] == "0.1" and frame.loc[0, "metrics.acc"] == 0.9
    assert str(frame["start_time"].dtype).startswith("datetime64")
    runs = tracker.search_runs("exp", output="runs", order_by=["name"])
    assert [r.name for r in runs] == ["child", "parent"]
    with pytest.raises(NotFound):
        tracker.search_runs("no-such-experiment")


def test_log_figure(tracker: Tracker) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    run = tracker.create_run("exp")
    artifact = tracker.log_figure(run.id, fig, "plots/curve.png")
    plt.close(fig)
    assert artifact.media_type == "image/png"
    assert tracker.read_artifact(run.id, "plots/curve.png")[:8] == b"\x89PNG\r\n\x1a\n"
