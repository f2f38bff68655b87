"""Pipelines over both metadata stores (SQLite file and PostgreSQL): caching, records, listing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conveyor.pipelines import run
from conveyor.store import PipelineRepo


def test_cache_and_records_on_every_store(
    pipes: Any, tracker: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    module = pipes("""
        @step(outputs=("a", "b"))
        def pair(n: int = 2) -> tuple:
            return list(range(n)), "text"

        @step
        def join(a: list, b: str) -> str:
            return b * len(a)

        @pipeline
        def flow(n: int = 2):
            a, b = pair(n=n)
            join(a, b)
    """)
    first = run(module.flow, tracker=tracker, experiment="stores")
    second = run(module.flow, tracker=tracker, experiment="stores")
    assert first.ok and second.cached == ["pair", "join"]
    assert second.load("join", tracker=tracker) == "texttext"
    repo = PipelineRepo()
    with tracker.store.read() as conn:
        listed = repo.list_runs(conn, "flow")
        executions = repo.executions_of(conn, second.run_id)
    assert [r.run_id for r in listed] == [second.run_id, first.run_id]
    assert listed[0].dag["steps"][1]["inputs"] == {"a": "pair.a", "b": "pair.b"}
    assert [(e.step, e.cached, e.status) for e in executions] == [("pair", True, "FINISHED"), ("join", True, "FINISHED")]
    assert set(executions[0].outputs) == {"a", "b"}
    with tracker.store.read() as conn:
        referenced = tracker.store.referenced_digests(conn)
    assert all(referenced.get(o.digest) for o in executions[0].outputs.values())  # gc keeps them, as manifests
