"""The serving stage of the quickstart on its own (it registers a champion when no
earlier stage did)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console


def test_serving_stage_serves_and_queries_the_champion(tmp_path: Path, monkeypatch: object) -> None:
    from conveyor.quickstart import _run, _serve

    monkeypatch.setattr(_run, "_stages", lambda: [("Serve", _serve.stage)])  # type: ignore[attr-defined]
    console = Console(record=True, width=140)
    story = _run.run(tmp_path / "project", console=console)
    facts = story.facts["serving"]
    assert facts["uri"] == "models:/quickstart@champion" and facts["url"].startswith("http://127.0.0.1:")
    assert len(facts["answers"]) == 5 and facts["log_rows"] == 10
    text = console.export_text()
    assert "a bad request gets 422" in text and "expects float64" in text
