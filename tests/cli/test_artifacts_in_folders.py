"""Every path `artifacts list` shows can be fetched with `artifacts get`, files inside a
logged folder included, from the CLI and from Python."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

import conveyor
from conveyor.cli import app
from conveyor.tracking import get_tracker

runner = CliRunner()


def test_every_listed_path_can_be_fetched(project: Path, tmp_path: Path) -> None:
    folder = project / "model"
    (folder / "nested").mkdir(parents=True)
    (folder / "conveyor-model.json").write_text('{"flavor": "sklearn"}', encoding="utf-8")
    (folder / "nested" / "weights.bin").write_bytes(bytes(range(256)) * 4)
    with conveyor.start_run(experiment="nested") as run:
        conveyor.log_artifacts(folder, "model")
        conveyor.log_text("top", "notes.txt")
    listed = runner.invoke(app, ["artifacts", "list", run.id, "--json"])
    assert listed.exit_code == 0, listed.output
    paths = sorted(row["path"] for row in json.loads(listed.output))
    assert paths == ["model/conveyor-model.json", "model/nested/weights.bin", "notes.txt"]
    for i, path in enumerate(paths):
        dest = tmp_path / f"out{i}"
        dest.mkdir()
        got = runner.invoke(app, ["artifacts", "get", run.id, path, "--dest", str(dest)])
        assert got.exit_code == 0, got.output
        written = dest / Path(path).name
        source = project / path if path.startswith("model/") else None
        assert written.read_bytes() == (source.read_bytes() if source else b"top")
    tracker = get_tracker()
    assert tracker.read_artifact(run.id, "model/nested/weights.bin") == bytes(range(256)) * 4
    missing = runner.invoke(app, ["artifacts", "get", run.id, "model/nope.json", "--dest", str(tmp_path)])
    assert missing.exit_code == 3 and "not found" in missing.output
