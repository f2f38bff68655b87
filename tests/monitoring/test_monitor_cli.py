"""``conveyor monitor`` on a real project folder."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from conveyor.cli import app

runner = CliRunner()


def _invoke(*args: str):
    return runner.invoke(app, ["monitor", *args])


def test_drift_command_on_files(project, make_frame):
    make_frame(seed=1).to_parquet(project / "ref.parquet")
    make_frame(seed=2).to_parquet(project / "calm.parquet")
    make_frame(seed=3, shift=1.0).to_parquet(project / "shifted.parquet")
    calm = _invoke("drift", "ref.parquet", "calm.parquet", "--json")
    assert calm.exit_code == 0, calm.output
    assert json.loads(calm.output)["dataset_drift"] is False
    shifted = _invoke("drift", "ref.parquet", "shifted.parquet", "--html", "drift.html")
    assert shifted.exit_code == 1 and "data-set drift: True" in shifted.output
    assert "<svg" in (project / "drift.html").read_text()
    missing = _invoke("drift", "ref.parquet", "nope.parquet")
    assert missing.exit_code == 3 and "nope.parquet" in missing.output


def test_drift_command_counts_the_target_as_monitor_run_does(project, make_frame):
    """Only the label drifts: as a feature it would make 1 of 3 drifted; as the target (what
    `monitor run` does with a monitor's target) it is reported but not counted."""
    make_frame(seed=1).to_parquet(project / "ref.parquet")
    flipped = make_frame(seed=2)
    flipped["churned"] = 1 - flipped["churned"]
    flipped.to_parquet(project / "cur.parquet")

    as_feature = _invoke("drift", "ref.parquet", "cur.parquet", "--drift-share", "0.3", "--json")
    assert as_feature.exit_code == 1, as_feature.output
    assert json.loads(as_feature.output)["n_features"] == 3
    as_target = _invoke("drift", "ref.parquet", "cur.parquet", "--drift-share", "0.3", "--target", "churned", "--json")
    assert as_target.exit_code == 0, as_target.output
    report = json.loads(as_target.output)
    assert report["n_features"] == 2 and report["n_drifted"] == 0 and report["drift_share_threshold"] == 0.3
    assert report["label_drift"]["column"] == "churned" and report["label_drift"]["drifted"]
    assert report["label_drift"]["statistics"]["distance"] == report["label_drift"]["value"]

    with (project / "conveyor.toml").open("a", encoding="utf-8") as f:
        f.write('\n[monitors.churn]\nmodel = "churn"\ntarget = "churned"\ndrift_share = 0.3\n')
    by_monitor = _invoke("drift", "ref.parquet", "cur.parquet", "--monitor", "churn", "--json")
    assert by_monitor.exit_code == 0 and json.loads(by_monitor.output)["n_features"] == 2, by_monitor.output

    one = _invoke("drift", "ref.parquet", "cur.parquet", "--columns", "age", "--target", "churned", "--method", "ks")
    assert one.exit_code == 0, one.output
    assert "0 of 1 features" in one.output and "D=" in one.output  # KS's D is shown beside its p-value
    two = _invoke("drift", "ref.parquet", "cur.parquet", "--columns", "age,plan", "--json")
    assert [c["column"] for c in json.loads(two.output)["columns"]] == ["age", "plan"]
    bad = _invoke("drift", "ref.parquet", "cur.parquet", "--drift-share", "1.5")
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    unknown = _invoke("drift", "ref.parquet", "cur.parquet", "--columns", "nope")
    assert unknown.exit_code == 2 and "nope" in unknown.output, unknown.output


def test_run_without_monitors_names_the_fix(project):
    result = _invoke("run")
    assert result.exit_code == 3 and "monitors.<name>" in result.output


def test_bad_monitor_key_is_bad_input(project):
    with (project / "conveyor.toml").open("a") as f:
        f.write('\n[monitors.m]\nmodel = "x"\nwindwo = "1h"\n')
    result = _invoke("run")
    assert result.exit_code == 2 and "windwo" in result.output


def test_run_report_history_on_an_unserved_model(project, stores, make_frame):
    import conveyor.data
    from conveyor.tracking import get_tracker

    assert runner.invoke(app, ["init"]).exit_code == 0
    ref = conveyor.data.add(make_frame(), name="train", tracker=stores).ref
    get_tracker().close()
    with (project / "conveyor.toml").open("a") as f:
        f.write(f'\n[monitors.m]\nmodel = "churn"\nreference = "{ref}"\nrules = ["drift_share > 0.3"]\n')
    result = _invoke("run", "--json")
    (evaluation,) = json.loads(result.output)
    assert evaluation["status"] in ("empty", "error") and evaluation["monitor"] == "m"
    history = _invoke("history", "--json")
    assert history.exit_code == 0 and json.loads(history.output)[0]["monitor"] == "m"
    assert _invoke("history", "--show", "nonsense").exit_code == 2


@pytest.mark.slow
def test_quickstart_stage_closes_the_loop(tmp_path):
    from rich.console import Console

    from conveyor.quickstart import _monitor, _run

    original = _run._stages
    _run._stages = lambda: [("monitor", _monitor.stage)]
    try:
        story = _run.run(tmp_path / "qs", console=Console(file=open(tmp_path / "out.txt", "w"), width=200))
    finally:
        _run._stages = original
    facts = story.facts["monitoring"]
    assert facts["trigger"]["status"] == "promoted" and facts["trigger"]["candidate_version"] == 2
    assert facts["served"][0] == ["1"] and facts["served"][-1] == ["2"]
    # `monitor report` recomputes the newest evaluation's prediction drift from the log: the
    # same rows the monitor compared, so the same p-value as stored (0.48 vs 0.04 before)
    from conveyor.cli._monitor import _window_reader
    from conveyor.monitoring import report_data
    from conveyor.settings import Settings
    from conveyor.tracking import Tracker

    tracker = Tracker.from_settings(Settings.load(tmp_path / "qs"))
    try:
        data = report_data(tracker, "churn-loop", load_window=_window_reader(tracker))
    finally:
        tracker.close()
    stored = data["prediction"]["outputs"]["stored"]
    assert stored["matches"] is True and stored["rows"] == stored["log_rows"] == data["prediction"]["rows"]


def test_watch_stops_after_max_runs(project, make_frame):
    assert runner.invoke(app, ["init"]).exit_code == 0
    with (project / "conveyor.toml").open("a") as f:
        f.write('\n[monitors.m]\nmodel = "churn"\nreference = "data:/train@1"\nschedule = "1s"\n')
    result = _invoke("watch", "--max-runs", "2", "--every", "0.1s")
    assert result.exit_code == 0, result.output
    assert result.output.count("m (churn") == 2


def test_performance_without_traffic(project):
    assert runner.invoke(app, ["init"]).exit_code == 0
    result = _invoke("performance", "churn")
    assert result.exit_code in (0, 3), result.output
    assert "no logged predictions" in result.output or "churn" in result.output
