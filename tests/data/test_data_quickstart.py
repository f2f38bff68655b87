from __future__ import annotations

from pathlib import Path

from rich.console import Console

import conveyor.data as cd


def test_data_stage_versions_keeps_schema_and_validates(embedded_only: None, project: Path) -> None:
    from conveyor.quickstart import _data
    from conveyor.quickstart._run import Story
    from conveyor.settings import Settings
    from conveyor.tracking import Tracker

    settings = Settings.load()
    tracker = Tracker.from_settings(settings, create=True)
    run = tracker.create_run("quickstart", capture=False)
    console = Console(record=True, width=200)
    try:
        story = Story(project, settings, tracker, console, facts={"runs": [("logreg", run.id, {})]})
        _data.stage(story)
        _data.stage(story)  # a second quickstart: unchanged, schema kept as edited
    finally:
        tracker.close()
    text = console.export_text()
    assert "data:/breast-cancer@1 (new version)" in text and "unchanged since the last run" in text
    assert "missing_column" in text and "out_of_range" in text and "unexpected_nulls" in text
    assert story.facts["dataset"] == "data:/breast-cancer@1"
    assert (project / "schemas" / "breast-cancer.toml").is_file()
    graph = cd.lineage_graph(None, "data:/breast-cancer@1", direction="down")
    assert f"runs:/{run.id}" in {str(e.downstream) for e in graph.downstream}
